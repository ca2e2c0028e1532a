"""Server settings from EPICS_* variables (podioc.runtime.settings.Settings.from_env)."""

from __future__ import annotations

import pytest

from podioc import ConfigError
from podioc.runtime.settings import Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.ca_server_port, s.ca_beacon_port, s.pva_server_port, s.pva_broadcast_port) == (
        5064, 5065, 5075, 5076)
    assert s.ca_intf_addrs == s.ca_beacon_addrs == s.pva_intf_addrs == ()
    assert s.ca_auto_beacon and s.pva_auto_beacon
    assert (s.ca_beacon_period, s.ca_max_array_bytes) == (15.0, 16384)


def test_reads_only_epics_variables() -> None:
    s = Settings.from_env({"EPICS_CA_SERVER_PORT": "6000", "PATH": "/bin", "HOME": "/root"})
    assert s.ca_server_port == 6000 and set(s.raw) == {"EPICS_CA_SERVER_PORT"}


def test_server_specific_variables_win() -> None:
    env = {"EPICS_CA_SERVER_PORT": "6000", "EPICS_CAS_SERVER_PORT": "6001",
           "EPICS_PVA_SERVER_PORT": "7000", "EPICS_PVAS_SERVER_PORT": "7001",
           "EPICS_PVA_BROADCAST_PORT": "7002", "EPICS_PVAS_BROADCAST_PORT": "7003",
           "EPICS_CA_REPEATER_PORT": "6002", "EPICS_CAS_BEACON_PORT": "6003"}
    s = Settings.from_env(env)
    assert (s.ca_server_port, s.pva_server_port, s.pva_broadcast_port, s.ca_beacon_port) == (
        6001, 7001, 7003, 6003)
    s = Settings.from_env({"EPICS_CA_REPEATER_PORT": "6002", "EPICS_CAS_SERVER_PORT": " "})
    assert (s.ca_beacon_port, s.ca_server_port) == (6002, 5064)  # blank = unset


def test_lists_and_flags() -> None:
    s = Settings.from_env({"EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1, 10.0.0.1",
                           "EPICS_CAS_BEACON_ADDR_LIST": " 10.0.0.255 ",
                           "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "no",
                           "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
                           "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "False"})
    assert s.ca_intf_addrs == ("127.0.0.1", "10.0.0.1")
    assert s.ca_beacon_addrs == ("10.0.0.255",)
    assert s.pva_intf_addrs == ("127.0.0.1",)
    assert not s.ca_auto_beacon and not s.pva_auto_beacon
    for yes in ("YES", "y", "true", "1", "On"):
        assert Settings.from_env({"EPICS_CAS_AUTO_BEACON_ADDR_LIST": yes}).ca_auto_beacon


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("EPICS_CA_SERVER_PORT", "abc", "'abc' is not a port number"),
    ("EPICS_CA_SERVER_PORT", "70000", "is not a port number"),
    ("EPICS_PVA_SERVER_PORT", "-1", "is not a port number"),
    ("EPICS_PVAS_BROADCAST_PORT", "5.5", "is not a port number"),
    ("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "maybe", "'maybe' is not YES or NO"),
    ("EPICS_CAS_BEACON_PERIOD", "0", "must be a number >= 0.1"),
    ("EPICS_CAS_BEACON_PERIOD", "soon", "must be a number >= 0.1"),
    ("EPICS_CA_MAX_ARRAY_BYTES", "100", "must be a number >= 16384"),
])
def test_bad_values_name_the_variable(key: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({key: value}, source="inst.yaml / environment")
    err = info.value
    assert (err.source, err.field) == ("inst.yaml / environment", key)
    assert problem in err.problem


def test_port_zero_is_allowed() -> None:
    assert Settings.from_env({"EPICS_CA_SERVER_PORT": "0"}).ca_server_port == 0


def test_caproto_env() -> None:
    s = Settings.from_env({"EPICS_CAS_SERVER_PORT": "6001", "EPICS_CAS_INTF_ADDR_LIST": "a b",
                           "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                           "EPICS_CA_MAX_ARRAY_BYTES": "100000"})
    env = s.caproto_env()
    # caproto ignores EPICS_CAS_SERVER_PORT: the effective port goes in EPICS_CA_SERVER_PORT
    assert env["EPICS_CA_SERVER_PORT"] == "6001"
    assert env["EPICS_CAS_INTF_ADDR_LIST"] == "a b"
    assert env["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] == "NO"
    assert env["EPICS_CA_MAX_ARRAY_BYTES"] == "100000"
    assert all(k.startswith("EPICS_") and isinstance(v, str) for k, v in env.items())


def test_pva_conf() -> None:
    conf = Settings.from_env({"EPICS_PVA_SERVER_PORT": "7000",
                              "EPICS_PVA_BROADCAST_PORT": "7001"}).pva_conf()
    assert conf["EPICS_PVAS_SERVER_PORT"] == "7000"
    assert conf["EPICS_PVAS_BROADCAST_PORT"] == "7001"
    assert "EPICS_PVAS_INTF_ADDR_LIST" not in conf  # unset: pvxs's default (all)
    conf = Settings.from_env({"EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
                              "EPICS_PVAS_BEACON_ADDR_LIST": "127.255.255.255",
                              "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO"}).pva_conf()
    assert conf["EPICS_PVAS_INTF_ADDR_LIST"] == "127.0.0.1"
    assert conf["EPICS_PVAS_BEACON_ADDR_LIST"] == "127.255.255.255"
    assert conf["EPICS_PVAS_AUTO_BEACON_ADDR_LIST"] == "NO"


def test_settings_read_no_environment_at_import() -> None:
    """from_env takes a mapping; nothing reads os.environ behind the caller's back."""
    assert Settings.from_env({}, source="x") == Settings(source="x")
