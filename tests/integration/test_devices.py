"""Sub-devices, vectors and PVs built at run time, served by a real ``podioc run``.

The test IOC (``iocs/devices.py``) has a vector of channels counted by the
config's ``args`` and adds, in a startup hook, a vector of sensors and a
``LIMIT`` PV. Clients: pyepics (libca) and caproto for CA, p4p for PVA. The
instance config autosaves and access-controls PVs that exist only after the
startup hook ran (an access group names one by its attribute path).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from p4p.client.thread import RemoteError

from harness import (
    IocProcess,
    PyepicsClient,
    ca_pv,
    caproto_client,
    poll_until,
    pva_client,
    unique_prefix,
)
from harness import podioc as run_podioc
from podioc.autosave.fileformat import decode
from podioc.autosave.settings import file_name_for
from podioc.runtime.health import HEALTH_SPECS

IocFactory = Callable[..., IocProcess]
RACK = Path(__file__).resolve().parent / "iocs" / "devices.py"
#: Every PV of the instance below but the health PVs (channels=3, sensors=2).
DEVICE_PVS = {"LATE_ERROR", "LIMIT",
              *(f"CH{n}:{pv}" for n in (1, 2, 3) for pv in ("VOLTAGE", "CURRENT", "POLLS")),
              *(f"SENSOR{n}:{pv}" for n in (1, 2) for pv in ("TEMP", "OFFSET"))}


def write_config(directory: Path) -> Path:
    """An instance of the Rack with autosave and access rules for run-time PVs."""
    path = directory / "rack.yaml"
    path.write_text(f"""\
ioc: '{RACK}:Rack'
prefix: 'RACK:'
args: {{channels: 3, sensors: 2}}
autosave:
  directory: '{directory / "sav"}'
  debounce: 0.02
access:
  rules: |
    ASG(DEFAULT) {{ RULE(1, WRITE) }}
    ASG(LOCKED) {{ RULE(1, READ) }}
  groups:
    LOCKED: ["sensor[2].offset"]
""")
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("rack"))


@pytest.fixture(scope="module")
def rack(module_ioc_factory: IocFactory, config: Path) -> IocProcess:
    return module_ioc_factory(config, name="rack")


@pytest.fixture(scope="module")
def pyepics(rack: IocProcess) -> Iterator[PyepicsClient]:
    with PyepicsClient(rack) as client:
        yield client


@pytest.fixture(scope="module")
def pva(rack: IocProcess) -> Iterator[Any]:
    with pva_client(rack) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def ca(rack: IocProcess) -> Iterator[Any]:
    with caproto_client(rack) as ctx:
        yield ctx


def ca_put_ok(ca: Any, name: str, value: float) -> bool:
    """A caproto put with callback: True if the server accepted it."""
    reply = ca_pv(ca, name).write([value], wait=True, timeout=10)
    return bool(reply.status.success)


def test_pvs_added_in_a_startup_hook_are_served_over_ca_and_pva(
        rack: IocProcess, pyepics: PyepicsClient, pva: Any) -> None:
    assert pyepics.get(rack.pv("SENSOR2:TEMP"))["value"] == 22.0  # the sensor's own hook
    assert pyepics.get(rack.pv("LIMIT"))["value"] == 5.0
    assert float(pva.get(rack.pv("SENSOR1:TEMP"), timeout=10)) == 21.0
    assert float(pva.get(rack.pv("LIMIT"), timeout=10)) == 5.0
    health = len(HEALTH_SPECS) + 2  # health PVs + 2 autosave status PVs
    assert rack.pv_count == len(DEVICE_PVS) + health
    assert pyepics.get(rack.pv("PV_COUNT"))["value"] == rack.pv_count
    values = pva.get([rack.pv(s) for s in sorted(DEVICE_PVS)], timeout=10)
    assert len(values) == len(DEVICE_PVS)


def test_sub_device_hooks_and_scans_run_with_their_own_self(
        rack: IocProcess, ca: Any, pva: Any) -> None:
    assert not ca_put_ok(ca, rack.pv("CH1:VOLTAGE"), 15.0)  # channel 1: at most 10 V
    assert ca_put_ok(ca, rack.pv("CH2:VOLTAGE"), 15.0)  # channel 2: at most 20 V
    assert float(pva.get(rack.pv("CH2:CURRENT"), timeout=10)) == 1.5  # CH2's put hook
    assert float(pva.get(rack.pv("CH1:VOLTAGE"), timeout=10)) == 0.0
    with pytest.raises(RemoteError, match="channel 3 allows at most 30 V"):
        pva.put(rack.pv("CH3:VOLTAGE"), 35.0, timeout=10)
    first = int(pva.get(rack.pv("CH3:POLLS"), timeout=10))
    poll_until(lambda: int(pva.get(rack.pv("CH3:POLLS"), timeout=10)) > first,
               message="CH3's scan counts")


def test_a_run_time_pv_has_its_validator_on_both_protocols(
        rack: IocProcess, ca: Any, pva: Any, pyepics: PyepicsClient) -> None:
    assert not ca_put_ok(ca, rack.pv("LIMIT"), -1.0)
    with pytest.raises(RemoteError, match="LIMIT must not be negative"):
        pva.put(rack.pv("LIMIT"), -2.0, timeout=10)
    assert pyepics.get(rack.pv("LIMIT"))["value"] == 5.0
    assert ca_put_ok(ca, rack.pv("LIMIT"), 6.5)
    assert float(pva.get(rack.pv("LIMIT"), timeout=10)) == 6.5


def test_access_rules_apply_to_run_time_pvs(rack: IocProcess, ca: Any, pva: Any,
                                            pyepics: PyepicsClient) -> None:
    assert pyepics.info(rack.pv("SENSOR2:OFFSET"))["write_access"] is False
    assert pyepics.info(rack.pv("SENSOR1:OFFSET"))["write_access"] is True
    assert not ca_put_ok(ca, rack.pv("SENSOR2:OFFSET"), 1.0)
    with pytest.raises(RemoteError):
        pva.put(rack.pv("SENSOR2:OFFSET"), 1.0, timeout=10)
    assert float(pva.get(rack.pv("SENSOR2:OFFSET"), timeout=10)) == 0.0
    pva.put(rack.pv("SENSOR1:OFFSET"), 0.5, timeout=10)


def test_adding_a_pv_while_serving_is_refused(rack: IocProcess,
                                              pyepics: PyepicsClient) -> None:
    poll_until(lambda: pyepics.get(rack.pv("LATE_ERROR"))["value"] == "AlreadyServingError",
               message="LATE_ERROR set")
    rack.wait_for_log(r"cannot add PV \S*TOO_LATE: the IOC .* is already serving")
    with pytest.raises(Exception, match="did not connect"):
        pyepics.get(rack.pv("TOO_LATE"), timeout=1.0)


def test_run_time_pvs_are_autosaved_and_restored_before_serving(
        ioc_factory: IocFactory, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    prefix = unique_prefix("RK")
    first = ioc_factory(config, prefix=prefix, name="first")
    with pva_client(first) as pva:
        pva.put(first.pv("LIMIT"), 7.25, timeout=10)
        pva.put(first.pv("SENSOR1:OFFSET"), -0.5, timeout=10)
    path = tmp_path / "sav" / file_name_for(prefix)
    deadline = time.monotonic() + 10
    while True:
        values = decode(path.read_bytes()).values if path.exists() else {}
        if values.get(prefix + "LIMIT") == 7.25 and values.get(prefix + "SENSOR1:OFFSET"):
            break
        assert time.monotonic() < deadline, f"not saved: {values}"
        time.sleep(0.01)
    assert first.stop() == 0
    second = ioc_factory(config, prefix=prefix, name="second")
    with pva_client(second) as pva:
        assert float(pva.get(second.pv("LIMIT"), timeout=10)) == 7.25
        assert float(pva.get(second.pv("SENSOR1:OFFSET"), timeout=10)) == -0.5
        assert str(pva.get(second.pv("AUTOSAVE_STATUS"), timeout=10)) == "OK"


def describe(*args: str) -> dict[str, Any]:
    result = run_podioc(["describe", *args, "--json"])
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_describe_shows_the_tree_and_with_startup_the_run_time_pvs(config: Path) -> None:
    plain = describe(str(config))
    names = {p["name"].removeprefix("RACK:") for p in plain["pvs"] if not p["health"]}
    assert names == {"LATE_ERROR", *(n for n in DEVICE_PVS if n.startswith("CH"))}
    assert [(d["path"], d["class"], d["name_prefix"], d["pvs"]) for d in plain["devices"]] == [
        ("", "Rack", "RACK:", 1), ("ch[1]", "Channel", "RACK:CH1:", 3),
        ("ch[2]", "Channel", "RACK:CH2:", 3), ("ch[3]", "Channel", "RACK:CH3:", 3)]
    by_name = {p["name"]: p for p in plain["pvs"]}
    assert (by_name["RACK:CH2:VOLTAGE"]["path"], by_name["RACK:CH2:VOLTAGE"]["device"]) == (
        "ch[2].voltage", "ch[2]")
    started = describe(str(config), "--startup")
    names = {p["name"].removeprefix("RACK:") for p in started["pvs"] if not p["health"]}
    assert names == DEVICE_PVS
    assert [d["path"] for d in started["devices"]][-2:] == ["sensor[1]", "sensor[2]"]
    table = run_podioc(["describe", str(config), "--startup"]).stdout
    assert "    sensor[2]: Sensor  RACK:SENSOR2:*  (2 PVs)" in table.splitlines()
