"""Instance configs (podioc.config): valid files, and errors that name file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podioc import ConfigError
from podioc import config as cfgmod

BASE = Path("/cfg")


def parse(data: Any) -> cfgmod.InstanceConfig:
    return cfgmod.parse(data, "inst.yaml", BASE)


def test_minimal_config_defaults() -> None:
    cfg = parse({"ioc": " ioc.py:Dev ", "prefix": "A:B:"})
    assert (cfg.ioc, cfg.prefix, cfg.source, cfg.base_dir) == ("ioc.py:Dev", "A:B:",
                                                                "inst.yaml", BASE)
    assert (cfg.args, cfg.protocols, cfg.health, cfg.epics, cfg.description) == (
        {}, ("ca", "pva"), True, {}, "")
    assert cfg.deploy == cfg.autosave == cfg.access == {}


def test_full_config() -> None:
    cfg = parse({"ioc": "pkg.mod:Dev", "prefix": "", "description": "d", "version": 1,
                 "args": {"gain": 2}, "protocols": ["pva"], "health": False,
                 "epics": {"EPICS_CA_SERVER_PORT": 5070, "EPICS_CAS_INTF_ADDR_LIST": "a b"},
                 "deploy": {"namespace": "bl01"}, "autosave": {"period": 5},
                 "access": {"rules": "r"}})
    assert cfg.protocols == ("pva",) and cfg.health is False and cfg.args == {"gain": 2}
    assert cfg.epics == {"EPICS_CA_SERVER_PORT": "5070", "EPICS_CAS_INTF_ADDR_LIST": "a b"}


def test_health_block() -> None:
    """``health:`` is true, false, or a block whose settings besides enabled go to
    ``health_block``."""
    cfg = parse({"ioc": "x", "prefix": "", "health": {"engineer": "A. Smith",
                                                      "location": "BL01 rack 3",
                                                      "sysreset": "open"}})
    assert cfg.health is True
    assert cfg.health_block == {"engineer": "A. Smith", "location": "BL01 rack 3",
                                "sysreset": "open"}
    off = parse({"ioc": "x", "prefix": "", "health": {"enabled": False}})
    assert off.health is False and off.health_block == {"sysreset": "rules"}
    never = parse({"ioc": "x", "prefix": "", "health": {"sysreset": False}})  # YAML: off
    assert never.health_block == {"sysreset": "never"}


@pytest.mark.parametrize(("data", "field", "problem"), [
    (["a"], "<top level>", "expected a mapping"),
    (None, "<top level>", "expected a mapping"),
    ({"ioc": "x", "prefix": "", "bogus": 1}, "bogus", "unknown setting"),
    ({"prefix": "A:"}, "ioc", "missing or not a string"),
    ({"ioc": "  ", "prefix": "A:"}, "ioc", "missing"),
    ({"ioc": "x"}, "prefix", "None is not a valid PV prefix"),
    ({"ioc": "x", "prefix": "A B"}, "prefix", "'A B' is not a valid PV prefix"),
    ({"ioc": "x", "prefix": 5}, "prefix", "not a valid PV prefix"),
    ({"ioc": "x", "prefix": "", "version": 2}, "version", "unsupported version 2"),
    ({"ioc": "x", "prefix": "", "args": [1]}, "args", "must be a mapping"),
    ({"ioc": "x", "prefix": "", "protocols": []}, "protocols", "is not a list of protocols"),
    ({"ioc": "x", "prefix": "", "protocols": ["ca", "ca"]}, "protocols", "not a list"),
    ({"ioc": "x", "prefix": "", "protocols": "ca"}, "protocols", "not a list"),
    ({"ioc": "x", "prefix": "", "health": "yes"}, "health", "is not true, false or a mapping"),
    ({"ioc": "x", "prefix": "", "health": {"sysreset": "yes"}}, "health.sysreset",
     "is not one of rules, open, never"),
    ({"ioc": "x", "prefix": "", "health": {"enginer": "me"}}, "health.enginer",
     "unknown setting"),
    ({"ioc": "x", "prefix": "", "epics": ["x"]}, "epics", "must be a mapping"),
    ({"ioc": "x", "prefix": "", "epics": {"CA_PORT": 1}}, "epics.CA_PORT",
     "not an EPICS_* variable name"),
    ({"ioc": "x", "prefix": "", "epics": {"EPICS_X": [1]}}, "epics.EPICS_X",
     "must be a string or number"),
    ({"ioc": "x", "prefix": "", "epics": {"EPICS_X": True}}, "epics.EPICS_X", "string or number"),
    ({"ioc": "x", "prefix": "", "deploy": [1]}, "deploy", "must be a mapping"),
    ({"ioc": "x", "prefix": "", "description": 5}, "description", "must be a string"),
])
def test_errors_name_the_field(data: Any, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(data)
    err = info.value
    assert (err.source, err.field) == ("inst.yaml", field)
    assert problem in err.problem
    assert str(err).startswith(f"inst.yaml: {field}: ")


def test_unknown_key_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse({"ioc": "x", "prefix": "", "prefx": "A:"})
    assert "known settings:" in str(info.value) and "prefix" in info.value.fix


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "my-ioc_01.yaml"
    path.write_text("ioc: ioc.py:Dev\nprefix: 'X:'\n")
    cfg = cfgmod.load(path)
    assert cfg.source == str(path) and cfg.base_dir == tmp_path.resolve()
    assert cfg.name == "my-ioc-01"


def test_load_yaml_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("ioc: x\nprefix: 'A:'\nargs: {a: [1, 2}\n")
    with pytest.raises(ConfigError) as info:
        cfgmod.load(path)
    assert (info.value.source, info.value.field) == (str(path), "line 3")
    assert "invalid YAML" in info.value.problem


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        cfgmod.load(tmp_path / "absent.yaml")


def test_name_from_prefix_when_not_a_file() -> None:
    assert cfgmod.InstanceConfig(ioc="x", prefix="BL01:Temp:").name == "bl01-temp"
    assert cfgmod.InstanceConfig(ioc="x", prefix="").name == "ioc"


def test_is_config_path() -> None:
    assert cfgmod.is_config_path("a.yaml") and cfgmod.is_config_path("dir/b.yml")
    assert not cfgmod.is_config_path("ioc.py") and not cfgmod.is_config_path("pkg.mod:Cls")


def test_pvi_block() -> None:
    assert parse({"ioc": "m:C", "prefix": "P:"}).pvi == "PVI"
    assert parse({"ioc": "m:C", "prefix": "P:", "pvi": {"name": "INFO"}}).pvi == "INFO"
    assert parse({"ioc": "m:C", "prefix": "P:", "pvi": {"enabled": False}}).pvi is None
    with pytest.raises(ConfigError) as info:
        parse({"ioc": "m:C", "prefix": "P:", "pvi": {"name": "A:B"}})
    assert "pvi.name" in str(info.value) and "not a PV name segment" in str(info.value)
