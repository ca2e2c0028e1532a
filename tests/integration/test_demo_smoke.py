"""Smoke test of the demo IOC (iocs/demo): every PV readable over CA and PVA, the
simulation runs, the setpoint is writable and guarded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, PyepicsClient, podioc, poll_until, pva_client
from harness.testiocs import DEMO_YAML

IocFactory = Callable[..., IocProcess]


@pytest.fixture(scope="module")
def demo(module_ioc_factory: IocFactory) -> IocProcess:
    return module_ioc_factory(DEMO_YAML, name="demo")


@pytest.fixture(scope="module")
def demo_pyepics(demo: IocProcess) -> Iterator[PyepicsClient]:
    with PyepicsClient(demo) as client:
        yield client


@pytest.fixture(scope="module")
def demo_pva(demo: IocProcess) -> Iterator[Any]:
    with pva_client(demo) as ctx:
        yield ctx


def test_every_pv_readable_over_ca_and_pva(demo: IocProcess, demo_pyepics: PyepicsClient,
                                           demo_pva: Any) -> None:
    described = podioc(["describe", str(DEMO_YAML), "--prefix", demo.prefix, "--json"])
    names = [p["name"] for p in json.loads(described.stdout)["pvs"]]
    assert len(names) == demo.pv_count
    for name in names:
        assert demo_pyepics.get(name)["value"] is not None, name
    values = demo_pva.get(names, timeout=10)
    assert all(v is not None for v in values)


def test_temperature_changes(demo: IocProcess, demo_pyepics: PyepicsClient,
                             demo_pva: Any) -> None:
    first = demo_pyepics.get(demo.pv("TEMPERATURE"))["value"]
    poll_until(lambda: demo_pyepics.get(demo.pv("TEMPERATURE"))["value"] != first,
               timeout=10, message="TEMPERATURE changes")
    seen = float(demo_pva.get(demo.pv("TEMPERATURE"), timeout=10))
    poll_until(lambda: float(demo_pva.get(demo.pv("TEMPERATURE"), timeout=10)) != seen,
               timeout=10, message="TEMPERATURE changes over PVA")
    samples = int(demo_pva.get(demo.pv("SAMPLES"), timeout=10))
    poll_until(lambda: int(demo_pva.get(demo.pv("SAMPLES"), timeout=10)) > samples + 2,
               timeout=10, message="SAMPLES counts scans")


def test_startup_hook_ran(demo: IocProcess, demo_pyepics: PyepicsClient) -> None:
    assert demo_pyepics.get(demo.pv("STATUS"))["value"] == "running"


def test_spectrum(demo: IocProcess, demo_pva: Any, demo_pyepics: PyepicsClient) -> None:
    spectrum = demo_pva.get(demo.pv("SPECTRUM"), timeout=10)
    assert spectrum.shape == (1024,) and str(spectrum.dtype) == "float64"
    assert len(demo_pyepics.get(demo.pv("SPECTRUM"))["value"]) == 1024
    poll_until(lambda: (demo_pva.get(demo.pv("SPECTRUM"), timeout=10) != spectrum).any(),
               timeout=10, message="SPECTRUM updates")


def test_setpoint_writable(demo: IocProcess, demo_pyepics: PyepicsClient,
                           demo_pva: Any) -> None:
    demo_pyepics.put(demo.pv("SETPOINT"), 30.0, wait=True)
    assert float(demo_pva.get(demo.pv("SETPOINT"), timeout=10)) == 30.0
    demo_pva.put(demo.pv("SETPOINT"), 42.5, timeout=10)
    assert demo_pyepics.get(demo.pv("SETPOINT"))["value"] == 42.5
    with pytest.raises(RemoteError, match=r"outside the limits 0 \.\. 150"):
        demo_pva.put(demo.pv("SETPOINT"), 151.0, timeout=10)
    assert demo_pyepics.get(demo.pv("SETPOINT"))["value"] == 42.5


def test_cool_mode_validator(demo: IocProcess, demo_pva: Any) -> None:
    demo_pva.put(demo.pv("MODE"), "COOL", timeout=10)
    try:
        with pytest.raises(RemoteError, match="in COOL mode the setpoint must not be above"):
            demo_pva.put(demo.pv("SETPOINT"), 149.0, timeout=10)
        demo_pva.put(demo.pv("SETPOINT"), 0.5, timeout=10)
    finally:
        demo_pva.put(demo.pv("MODE"), "HEAT", timeout=10)


def test_other_writable_pvs(demo: IocProcess, demo_pyepics: PyepicsClient,
                            demo_pva: Any) -> None:
    demo_pyepics.put(demo.pv("GAIN"), 55, wait=True)
    demo_pyepics.put(demo.pv("LABEL"), "smoke test", wait=True)
    demo_pyepics.put(demo.pv("ENABLED"), 0, wait=True)
    assert int(demo_pva.get(demo.pv("GAIN"), timeout=10)) == 55
    assert demo_pva.get(demo.pv("LABEL"), timeout=10).raw["value"] == "smoke test"
    assert str(demo_pva.get(demo.pv("ENABLED"), timeout=10)) == "Disabled"
    demo_pva.put(demo.pv("ENABLED"), "Enabled", timeout=10)
    assert demo_pyepics.get(demo.pv("ENABLED"), as_string=True)["value"] == "Enabled"
    assert demo_pyepics.info(demo.pv("TEMPERATURE"))["write_access"] is False


def test_clean_exit(demo: IocProcess) -> None:
    assert demo.stop() == 0
    assert "Traceback" not in demo.log_text()
