"""The GigE Vision host against aravis's camera emulator on loopback (unicast).

Pixels are checked against the emulator's Mono8 test pattern (aravis
arvfakecamera.c, ``arv_fake_camera_diagonal_ramp``): ``(x + y + frame_id) % 255``
times ``1 + gain + log10(exposure_us / 10000)``, clamped to 0..255, where
frame_id is the GVSP block id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.gige_emulator import LoopbackEmulator
from harness.gige_packets import ramp
from podioc.gige import Camera, Frame, GenICamError, GvcpTimeout, discover

pytestmark = pytest.mark.gige


def expected(width: int, height: int, frame_id: int, gain: int, exposure_us: float) -> np.ndarray:
    scale = 1.0 + gain + math.log10(exposure_us / 10000.0)
    values = ramp(width, height, frame_id).astype(np.float64) * scale
    out: np.ndarray = np.clip(values, 0, 255).astype(np.uint8)
    return out


def collect(camera: Camera, count: int, timeout: float = 20.0) -> list[Frame]:
    frames: list[Frame] = []
    camera.open_stream(frames.append)
    camera.start()
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    camera.stop()
    assert len(frames) >= count, f"{len(frames)} frames in {timeout} s"
    return frames


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[Camera]:
    with LoopbackEmulator(tmp_path):
        cam = Camera(LoopbackEmulator.address)
        cam.connect()
        yield cam
        cam.close()


def test_unicast_discovery_and_identity(camera: Camera) -> None:
    found = discover([LoopbackEmulator.address])
    assert [(d.manufacturer, d.model, d.serial) for d in found] == [("Aravis", "Fake", "GV01")]
    assert camera.info is not None and camera.info.xml_url.startswith("Local:")
    nodes = camera.features
    assert (nodes.get("SensorWidth"), nodes.get("SensorHeight")) == (2048, 2048)
    assert nodes.get_enum("PixelFormat") == "Mono8"


def test_frames_match_pattern(camera: Camera) -> None:
    nodes = camera.features
    nodes.set("Width", 320)
    nodes.set("Height", 240)
    nodes.set("GainRaw", 1)
    nodes.set("ExposureTimeAbs", 20000)
    nodes.set("AcquisitionFrameRate", 50)
    assert nodes.get("AcquisitionFrameRate") == pytest.approx(50)
    frames = collect(camera, 10)
    for frame in frames:
        assert frame.image.shape == (240, 320)
        np.testing.assert_array_equal(frame.image, expected(320, 240, frame.block_id, 1, 20000))
    ids = [f.block_id for f in frames]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert camera.stream is not None
    assert camera.stream.assembler.stats.frames_incomplete == 0


def test_missing_feature_and_vanished_camera(tmp_path: Path) -> None:
    with LoopbackEmulator(tmp_path) as emulator:
        cam = Camera(LoopbackEmulator.address, timeout=0.1, retries=2)
        cam.connect(heartbeat=False)
        with pytest.raises(GenICamError, match="has no feature 'NoSuchFeature'"):
            cam.features.get("NoSuchFeature")
        assert emulator.proc is not None
        emulator.proc.terminate()
        emulator.proc.wait(5)
        with pytest.raises(GvcpTimeout, match=r"camera 127.0.0.1:3956: no answer to READREG "
                                              r"0x100 after 3 attempts"):
            cam.features.get("Width")
        cam.close()


def test_lost_packets_counted(tmp_path: Path) -> None:
    with LoopbackEmulator(tmp_path, loss_per_thousand=10):
        cam = Camera(LoopbackEmulator.address)
        try:
            cam.connect()
            cam.features.set("AcquisitionFrameRate", 50)
            frames: list[Frame] = []
            receiver = cam.open_stream(frames.append)
            cam.start()
            deadline = time.monotonic() + 20
            stats = receiver.assembler.stats
            while stats.frames_incomplete < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            cam.stop()
            assert stats.frames_incomplete >= 3 and stats.packets_missing >= 3
            for frame in frames:      # delivered frames are whole and correct
                np.testing.assert_array_equal(frame.image, ramp(512, 512, frame.block_id))
        finally:
            cam.close()
