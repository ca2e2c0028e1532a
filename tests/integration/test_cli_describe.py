"""``podioc describe``: the stable JSON document, the table, --prefix, and agreement with
what a live IOC actually serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import podioc
from harness import IocProcess, pva_client
from harness import podioc as run_podioc
from harness.testiocs import ALLKINDS, DEMO_YAML

IocFactory = Callable[..., IocProcess]

DOC_KEYS = {"format", "podioc_version", "ioc_class", "prefix", "protocols", "pvs"}
PV_KEYS = {"name", "kind", "writable", "description", "units", "precision", "limits",
           "display_limits", "alarm", "choices", "dtype", "max_length", "autosave", "health",
           "initial"}
DEMO_PVS = {"SETPOINT", "TEMPERATURE", "MODE", "ENABLED", "GAIN", "LABEL", "STATUS",
            "SPECTRUM", "SAMPLES"}
HEALTH_PVS = {"HEARTBEAT", "UPTIME", "UPTIME_S", "START_TOD", "VERSION", "PV_COUNT",
              "CA_CLIENTS", "PVA_CLIENTS", "PVA_CHANNELS", "RSS", "STARTTOD", "TOD",
              "START_CNT", "CA_CLNT_CNT", "CA_CONN_CNT", "IOC_CPU_LOAD", "SYS_CPU_LOAD",
              "MEM_USED", "MEM_FREE", "MEM_MAX", "FD_CNT", "FD_MAX", "FD_FREE", "RECORD_CNT",
              "HOSTNAME", "EPICS_VERS", "KERNEL_VERS", "APP_DIR", "ENGINEER", "LOCATION",
              "SYSRESET"}


def describe(*args: str) -> dict[str, Any]:
    result = run_podioc(["describe", *args, "--json"])
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture(scope="module")
def demo_doc() -> dict[str, Any]:
    return describe(str(DEMO_YAML))


def test_document_structure(demo_doc: dict[str, Any]) -> None:
    assert set(demo_doc) == DOC_KEYS | {"devices"}  # keys added later: the device tree
    assert demo_doc["format"] == 1
    assert demo_doc["podioc_version"] == podioc.__version__
    assert demo_doc["ioc_class"] == "ioc.py:DemoDevice"
    assert demo_doc["prefix"] == "DEMO:"
    assert demo_doc["protocols"] == ["ca", "pva"]
    names = [p["name"] for p in demo_doc["pvs"]]
    assert names == sorted(names)
    for entry in demo_doc["pvs"]:
        assert set(entry) >= PV_KEYS, entry["name"]
        assert set(entry) == set(demo_doc["pvs"][0]), "every PV has the same keys"


def test_every_demo_pv_described(demo_doc: dict[str, Any]) -> None:
    names = {p["name"] for p in demo_doc["pvs"]}
    assert {f"DEMO:{n}" for n in DEMO_PVS | HEALTH_PVS} <= names
    by_name = {p["name"]: p for p in demo_doc["pvs"]}
    assert {n for n, p in by_name.items() if not p["health"]} == {f"DEMO:{n}" for n in DEMO_PVS}
    setpoint = by_name["DEMO:SETPOINT"]
    assert (setpoint["kind"], setpoint["writable"], setpoint["units"], setpoint["precision"],
            setpoint["limits"], setpoint["initial"], setpoint["autosave"]) == (
        "float", True, "degC", 2, [0.0, 150.0], 25.0, True)
    temperature = by_name["DEMO:TEMPERATURE"]
    assert temperature["alarm"] == {"lolo": 5.0, "low": 10.0, "high": 80.0, "hihi": 100.0}
    assert temperature["display_limits"] == [0.0, 150.0] and not temperature["writable"]
    assert by_name["DEMO:MODE"]["choices"] == ["OFF", "HEAT", "COOL"]
    assert by_name["DEMO:MODE"]["initial"] == "HEAT"
    assert by_name["DEMO:ENABLED"]["choices"] == ["Disabled", "Enabled"]
    spectrum = by_name["DEMO:SPECTRUM"]
    assert (spectrum["kind"], spectrum["dtype"], spectrum["max_length"]) == (
        "array", "float64", 1024)


def test_output_is_stable(demo_doc: dict[str, Any]) -> None:
    assert describe(str(DEMO_YAML)) == demo_doc


def test_prefix_option(demo_doc: dict[str, Any]) -> None:
    doc = describe(str(DEMO_YAML), "--prefix", "OTHER:X:")
    assert doc["prefix"] == "OTHER:X:"
    assert [p["name"] for p in doc["pvs"]] == sorted(
        "OTHER:X:" + p["name"].removeprefix("DEMO:") for p in demo_doc["pvs"])


def test_python_file_target() -> None:
    doc = describe(str(ALLKINDS), "--prefix", "AK:")
    assert doc["ioc_class"] == f"{ALLKINDS}:AllKinds"
    by_name = {p["name"]: p for p in doc["pvs"]}
    kinds = {n: by_name[f"AK:{n}"]["kind"] for n in ("FLOAT", "INT", "BOOL", "ENUM", "STRING",
                                                      "WF_I32")}
    assert kinds == {"FLOAT": "float", "INT": "int", "BOOL": "bool", "ENUM": "enum",
                     "STRING": "string", "WF_I32": "array"}
    assert by_name["AK:WF_U8"]["dtype"] == "uint8"
    assert by_name["AK:WF_U8"]["initial"] == [1, 2, 255]


def test_table_form(demo_doc: dict[str, Any]) -> None:
    result = run_podioc(["describe", str(DEMO_YAML)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ioc.py:DemoDevice prefix='DEMO:' protocols=ca,pva")
    assert lines[1].split()[:6] == ["PV", "TYPE", "RW", "UNITS", "LIMITS", "DETAILS"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {p["name"] for p in demo_doc["pvs"]}
    assert "0..150" in rows["DEMO:SETPOINT"] and " rw " in rows["DEMO:SETPOINT"]
    assert "OFF|HEAT|COOL" in rows["DEMO:MODE"]
    assert "alarm lolo=5 low=10 high=80 hihi=100" in rows["DEMO:TEMPERATURE"]
    assert "array[1024] float64" in rows["DEMO:SPECTRUM"]


def test_describe_errors_are_clean(tmp_path: Any) -> None:
    result = run_podioc(["describe", str(tmp_path / "nope.yaml")])
    assert result.returncode != 0 and "cannot be read" in result.stderr
    assert "Traceback" not in result.output


def test_described_pvs_are_exactly_the_served_pvs(ioc_factory: IocFactory) -> None:
    """Run the demo with a prefix; describe with the same prefix lists what is served."""
    ioc = ioc_factory(DEMO_YAML)
    doc = describe(str(DEMO_YAML), "--prefix", ioc.prefix)
    assert len(doc["pvs"]) == ioc.pv_count  # the "serving N PVs" log line
    with pva_client(ioc) as pva:
        values = pva.get([p["name"] for p in doc["pvs"]], timeout=10)
        assert len(values) == len(doc["pvs"])
        assert int(pva.get(ioc.pv("PV_COUNT"), timeout=10)) == ioc.pv_count
