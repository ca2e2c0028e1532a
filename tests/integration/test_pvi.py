"""PVI over PVA: the structure p4p reads, and ophyd-async building devices from it alone.

The ophyd-async client runs as its own process (tests/harness/ophyd_pvi.py)
with the IOC's EPICS_PVA_* settings; no ophyd-async device class is written
anywhere: the device comes from ``fastcs_connector(prefix)`` and the PVI PV.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, ca_pv, caproto_client, podioc, poll_until, pva_client
from harness.ophyd_run import ophyd
from harness.testiocs import DEMO_YAML, TESTS

IocFactory = Callable[..., IocProcess]
CHANNELS = TESTS / "integration" / "iocs" / "channels.py"


@pytest.fixture(scope="module")
def demo(module_ioc_factory: IocFactory) -> IocProcess:
    return module_ioc_factory(DEMO_YAML, name="demo")


@pytest.fixture(scope="module")
def channels(module_ioc_factory: IocFactory) -> IocProcess:
    return module_ioc_factory(CHANNELS, name="channels")


def _described(ioc: IocProcess, target: Path) -> list[dict[str, Any]]:
    out = podioc(["describe", str(target), "--prefix", ioc.prefix, "--json"])
    pvs: list[dict[str, Any]] = json.loads(out.stdout)["pvs"]
    return pvs


def test_demo_pvi_lists_every_pv_once_with_its_role(demo: IocProcess) -> None:
    expected = {p["name"]: "rw" if p["writable"] else "r" for p in _described(demo, DEMO_YAML)}
    with pva_client(demo, nt=False) as ctx:
        value = ctx.get(demo.pv("PVI"), timeout=10)
    assert value["display.description"] == "Simulated heater for trying out podioc"
    entries = value.todict()["value"]
    served = {pv: role for entry in entries.values() for role, pv in entry.items()}
    assert served == expected
    assert entries["setpoint"] == {"rw": demo.pv("SETPOINT")}
    assert entries["temperature"] == {"r": demo.pv("TEMPERATURE")}


def test_pvi_is_read_only_and_pva_only(demo: IocProcess) -> None:
    with pva_client(demo, nt=False) as ctx, pytest.raises(RemoteError, match="read-only"):
        ctx.put(demo.pv("PVI"), {"display.description": "x"}, timeout=10)
    with caproto_client(demo) as ctx, pytest.raises(TimeoutError):
        ca_pv(ctx, demo.pv("PVI"), timeout=2.0)


def test_ophyd_async_drives_the_demo_from_pvi_alone(demo: IocProcess) -> None:
    described = _described(demo, DEMO_YAML)
    report = ophyd(demo, "setpoint=42.5", "gain=33")
    signals = report["signals"]
    assert {s["source"] for s in signals.values()} == {f"pva://{p['name']}" for p in described}
    for p in described:
        name = p["name"][len(demo.prefix):].lower()
        assert signals[name]["type"] == ("SignalRW" if p["writable"] else "SignalR"), name
        assert "value" in signals[name], name
    assert signals["mode"]["value"] in ("OFF", "HEAT", "COOL")
    assert len(signals["spectrum"]["value"]) == 1024
    assert report["sets"] == {"setpoint": {"value": 42.5}, "gain": {"value": 33}}
    with pva_client(demo) as ctx:  # another client sees what ophyd-async wrote
        assert float(ctx.get(demo.pv("SETPOINT"), timeout=10)) == 42.5


def test_ophyd_async_builds_groups_and_vectors(channels: IocProcess) -> None:
    report = ophyd(channels, "ch.2.gain=2.5", "stage_.x=1.25")
    signals = report["signals"]
    for n in (1, 2, 3):
        assert signals[f"ch.{n}.voltage"] == {
            "type": "SignalR", "source": f"pva://{channels.prefix}CH{n}:VOLTAGE",
            "value": signals[f"ch.{n}.voltage"]["value"]}
        assert signals[f"ch.{n}.gain"]["type"] == "SignalRW"
        assert signals[f"ch.{n}.name_"]["value"] == f"channel {n}"
    assert signals["stage_.y"]["source"] == f"pva://{channels.prefix}STAGE:Y"
    assert signals["total"]["type"] == "SignalR"
    assert report["sets"] == {"ch.2.gain": {"value": 2.5}, "stage_.x": {"value": 1.25}}
    with pva_client(channels) as ctx:  # the IOC acted on the put: voltage = gain x 2
        poll_until(lambda: float(ctx.get(channels.pv("CH2:VOLTAGE"), timeout=10)) == 5.0,
                   timeout=10, message="CH2:VOLTAGE follows the gain ophyd-async set")
        vector = ctx.get(channels.pv("CH:PVI"), timeout=10)
        assert vector.todict()["value"] == {
            f"__{n}": {"d": f"{channels.prefix}CH{n}:PVI"} for n in (1, 2, 3)}


def test_pvi_name_is_configurable_and_pvi_can_be_turned_off(
        ioc_factory: IocFactory, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(f"ioc: '{CHANNELS}:Channels'\nprefix: 'X:'\npvi: {{name: INFO}}\n")
    off = tmp_path / "off.yaml"
    off.write_text(f"ioc: '{CHANNELS}:Channels'\nprefix: 'X:'\npvi: {{enabled: false}}\n")
    ioc = ioc_factory(renamed, name="renamed")
    with pva_client(ioc, nt=False) as ctx:
        entries = ctx.get(ioc.pv("INFO"), timeout=10).todict()["value"]
        assert entries["stage_"] == {"d": ioc.pv("STAGE:INFO")}
        assert ctx.get(ioc.pv("STAGE:INFO"), timeout=10).todict()["value"] == {
            "x": {"rw": ioc.pv("STAGE:X")}, "y": {"rw": ioc.pv("STAGE:Y")}}
        with pytest.raises(TimeoutError):
            ctx.get(ioc.pv("PVI"), timeout=2.0)
    ioc = ioc_factory(off, name="off")
    with pva_client(ioc, nt=False) as ctx, pytest.raises(TimeoutError):
        ctx.get(ioc.pv("PVI"), timeout=2.0)
