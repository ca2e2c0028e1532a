"""The one parser of EPICS YES/NO flags and address lists (podioc.config.epicsvars)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podioc import ConfigError
from podioc import config as cfgmod
from podioc.config.epicsvars import (
    check_variable,
    parse_number,
    parse_port,
    parse_yes_no,
    split_address_list,
)
from podioc.diagnostics import doctor
from podioc.protocols.ca.discovery import Interface
from podioc.runtime.settings import Settings


@pytest.mark.parametrize("value", ["YES", "yes", "Yes", " YES ", "y", "TRUE", "true", "1",
                                   "on", "ON"])
def test_yes(value: str) -> None:
    assert parse_yes_no("EPICS_X", value, False) is True


@pytest.mark.parametrize("value", ["NO", "no", "No", " no\n", "n", "FALSE", "false", "0",
                                   "off", "OFF"])
def test_no(value: str) -> None:
    assert parse_yes_no("EPICS_X", value, True) is False


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_or_blank_is_the_default(value: str | None) -> None:
    assert parse_yes_no("EPICS_X", value, True) is True
    assert parse_yes_no("EPICS_X", value, False) is False


@pytest.mark.parametrize("value", ["enable", "enabled", "disable", "2", "yess", "nope", "-"])
def test_anything_else_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yes_no("PODIOC_CA_SEARCH_FANOUT", value, True, source="env")
    err = info.value
    assert (err.source, err.field) == ("env", "PODIOC_CA_SEARCH_FANOUT")
    assert err.problem == f"{value!r} is not YES or NO"
    assert "YES or NO" in err.fix and "TRUE/FALSE" in err.fix
    assert str(err).startswith(f"env: PODIOC_CA_SEARCH_FANOUT: {value!r} is not YES or NO")


def test_enable_does_not_turn_the_fan_out_off() -> None:
    """The bug this parser fixes: a lenient parser read 'enable' as NO."""
    with pytest.raises(ConfigError, match="'enable' is not YES or NO"):
        parse_yes_no("PODIOC_CA_SEARCH_FANOUT", "enable", True)


@pytest.mark.parametrize(("value", "expected"), [
    (None, []),
    ("", []),
    ("  ", []),
    ("10.0.0.1", ["10.0.0.1"]),
    (" 10.0.0.1  10.0.0.2:5066\t10.0.0.3 ", ["10.0.0.1", "10.0.0.2:5066", "10.0.0.3"]),
    ("10.0.0.1,10.0.0.2, 10.0.0.3", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
])
def test_split_address_list(value: str | None, expected: list[str]) -> None:
    assert split_address_list(value) == expected


def test_ports_and_numbers() -> None:
    assert parse_port("EPICS_CA_SERVER_PORT", " 5064 ") == 5064
    assert parse_port("EPICS_CA_SERVER_PORT", "") is None
    assert parse_number("EPICS_CAS_BEACON_PERIOD", "", 15.0, 0.1) == 15.0
    with pytest.raises(ConfigError, match=r"'nan' must be a number >= 0\.1"):
        parse_number("EPICS_CAS_BEACON_PERIOD", "nan", 15.0, 0.1)
    with pytest.raises(ConfigError, match="is not a port number"):
        parse_port("EPICS_PVA_SERVER_PORT", "65536")


def test_known_variables_are_checked_others_pass() -> None:
    check_variable("EPICS_CA_AUTO_ADDR_LIST", "NO")
    check_variable("EPICS_SOMETHING_ELSE", "enable")
    with pytest.raises(ConfigError, match="EPICS_CA_AUTO_ADDR_LIST"):
        check_variable("EPICS_CA_AUTO_ADDR_LIST", "enable")


def test_used_by_the_server_settings_and_the_config() -> None:
    with pytest.raises(ConfigError, match="'enable' is not YES or NO"):
        Settings.from_env({"EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "enable"})
    assert Settings.from_env({"EPICS_CAS_INTF_ADDR_LIST": "a,b c"}).ca_intf_addrs == (
        "a", "b", "c")
    with pytest.raises(ConfigError) as info:
        cfgmod.parse({"ioc": "x", "prefix": "", "epics": {
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "enable", "EPICS_CA_SERVER_PORT": 70000}},
            "inst.yaml", Path("/cfg"))
    fields = [p.field for p in info.value.problems]
    assert fields == ["epics.EPICS_CAS_AUTO_BEACON_ADDR_LIST", "epics.EPICS_CA_SERVER_PORT"]


def _probes(sharers: tuple[str, ...] = ()) -> doctor.Probes:
    eth0 = Interface("eth0", "10.1.2.3", "255.255.255.0", "10.1.2.255", True, False)
    lo = Interface("lo", "127.0.0.1", "255.0.0.0", "127.255.255.255", True, True)
    return doctor.Probes(interfaces=lambda: [lo, eth0],
                         tcp_port=lambda a, p: doctor.PortUse(True),
                         udp_sharers=lambda p: sharers, route=lambda a: None,
                         hostname=lambda: "testhost", files=lambda p: False)


def test_doctor_reports_a_flag_that_is_neither_yes_nor_no() -> None:
    report = doctor.diagnose({"PODIOC_CA_SEARCH_FANOUT": "enable",
                              "EPICS_CA_AUTO_ADDR_LIST": "enable"},
                             _probes(sharers=("0.0.0.0:5064 pid 99",)))
    bad = {c.status: c.message for c in report.checks if "is not YES or NO" in c.message}
    assert bad["FAIL"].startswith("PODIOC_CA_SEARCH_FANOUT='enable' is not YES or NO")
    assert bad["WARN"].startswith("EPICS_CA_AUTO_ADDR_LIST='enable' is not YES or NO")
    assert report.verdict == "FAIL"
    fine = doctor.diagnose({"PODIOC_CA_SEARCH_FANOUT": "no"}, _probes(("0.0.0.0:5064",)))
    assert not any("is not YES or NO" in c.message for c in fine.checks)
    assert any("PODIOC_CA_SEARCH_FANOUT=NO" in c.hint for c in fine.checks)
