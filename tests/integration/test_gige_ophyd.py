"""ophyd-async's areaDetector driver class against the camera IOC: every PV that
``adaravis.AravisDriverIO`` (ADBaseIO + NDArrayBaseIO + trigger PVs) declares
connects with a compatible type over CA and over PVA, reads, and settings write."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from harness import IocProcess
from harness.gige_emulator import LoopbackEmulator
from harness.ioc_process import base_env
from harness.testiocs import REPO

pytest.importorskip("ophyd_async")

pytestmark = pytest.mark.gige


@pytest.fixture(scope="module")
def camera_ioc(module_ioc_factory: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[IocProcess]:
    with LoopbackEmulator(tmp_path_factory.mktemp("emulator")):
        ioc: IocProcess = module_ioc_factory(REPO / "iocs" / "gige" / "gige.yaml", name="oph")
        yield ioc
        ioc.stop()


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_aravis_driver_connects_and_works(camera_ioc: IocProcess, protocol: str) -> None:
    env = {**base_env(), **camera_ioc.client_env(), **camera_ioc.pva_conf()}
    done = subprocess.run([sys.executable, "-m", "harness.ophyd_worker",
                           f"{protocol}://{camera_ioc.pv('cam1:')}"], env=env,
                          cwd=REPO / "tests", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    values = json.loads(done.stdout.strip().splitlines()[-1])
    assert values["manufacturer"] == "Aravis" and values["model"] == "Fake"
    assert values["detector_state"] == "Idle"
    assert values["acquire_time_after"] == pytest.approx(0.02)
    assert values["acquire_after"] is False
    assert values["array_counter_after"] >= 2
    assert values["data_type"] == "UInt8" and values["color_mode"] == "Mono"
    assert values["trigger_mode"] == "Off"
