"""The camera IOC when its camera vanishes mid-acquisition: alarms with messages, no crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, poll_until, pva_client
from harness.gige_emulator import LoopbackEmulator
from harness.testiocs import REPO

pytestmark = pytest.mark.gige

IocFactory = Callable[..., IocProcess]


def test_camera_vanishes_mid_acquisition(ioc_factory: IocFactory, tmp_path: Path) -> None:
    with LoopbackEmulator(tmp_path) as emulator:
        ioc = ioc_factory(REPO / "iocs" / "gige" / "gige.yaml", name="vanish")
        with pva_client(ioc) as ctx:
            pv = ioc.pv
            ctx.put(pv("cam1:Acquire"), 1, wait=True)
            poll_until(lambda: int(ctx.get(pv("cam1:ArrayCounter_RBV"))) >= 3, timeout=15,
                       message="frames before the camera goes")
            assert emulator.proc is not None
            emulator.proc.kill()
            emulator.proc.wait(5)
            frames = poll_until(
                lambda: (v := ctx.get(pv("cam1:StreamFrames_RBV")).raw).alarm.severity == 3
                and v, timeout=10, message="stream alarm after the camera vanished")
            message = str(frames.alarm.message)
            port = int(ctx.get(pv("cam1:StreamPort_RBV")))
            assert f"GVSP stream on negotiated port UDP {port} stopped" in message
            assert "camera 127.0.0.1 stopped sending" in message
            state = poll_until(
                lambda: (v := ctx.get(pv("cam1:DetectorState_RBV")).raw).alarm.severity == 2
                and v, timeout=15, message="heartbeat alarm")
            assert "no answer to READREG 0xa00" in str(state.alarm.message)
            # stopping fails with the device's message, and the IOC keeps serving
            with pytest.raises(RemoteError, match=r"AcquisitionStop: camera 127\.0\.0\.1:3956: "
                                                  r"no answer to WRITEREG 0x124=0"):
                ctx.put(pv("cam1:Acquire"), 0, wait=True, timeout=15)
            assert int(ctx.get(pv("HEARTBEAT"))) >= 0
        assert ioc.alive()
        assert "stopped sending" in ioc.log_text()
