"""The camera IOC (iocs/gige) against aravis's emulator on loopback: real p4p and
pyepics clients read images whose pixels match the emulator's test pattern."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, PyepicsClient, poll_until, pva_client
from harness.gige_emulator import LoopbackEmulator
from harness.gige_packets import gvsp, leader, ramp
from harness.ports import free_ports
from harness.testiocs import REPO

pytestmark = pytest.mark.gige

GIGE_YAML = REPO / "iocs" / "gige" / "gige.yaml"
IocFactory = Callable[..., IocProcess]


@pytest.fixture(scope="module")
def camera_ioc(module_ioc_factory: IocFactory,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[IocProcess]:
    with LoopbackEmulator(tmp_path_factory.mktemp("emulator")):
        ioc = module_ioc_factory(GIGE_YAML, name="gige")
        yield ioc
        ioc.stop()


@pytest.fixture(scope="module")
def pva(camera_ioc: IocProcess) -> Iterator[Any]:
    with pva_client(camera_ioc) as ctx:
        yield ctx


def test_identity_and_stream_port(camera_ioc: IocProcess, pva: Any) -> None:
    assert pva.get(camera_ioc.pv("cam1:Manufacturer_RBV")) == "Aravis"
    assert pva.get(camera_ioc.pv("cam1:Model_RBV")) == "Fake"
    assert int(pva.get(camera_ioc.pv("cam1:MaxSizeX_RBV"))) == 2048
    port = int(pva.get(camera_ioc.pv("cam1:StreamPort_RBV")))
    assert 1024 <= port <= 65535
    assert f"stream on UDP port {port}" in camera_ioc.log_text()
    assert pva.get(camera_ioc.pv("cam1:DetectorState_RBV")).raw.value.index == 0


def test_images_match_pattern_over_pva_and_ca(camera_ioc: IocProcess, pva: Any) -> None:
    pv = camera_ioc.pv
    pva.put(pv("cam1:SizeX"), 320, wait=True)
    pva.put(pv("cam1:SizeY"), 200, wait=True)
    assert int(pva.get(pv("cam1:SizeX_RBV"))) == 320
    pva.put(pv("cam1:ImageMode"), "Continuous", wait=True)
    pva.put(pv("cam1:Acquire"), 1, wait=True)
    try:
        def image_320x200() -> Any:
            image = pva.get(pv("Pva1:Image"))
            return [image] if image.shape == (200, 320) else None

        (image,) = poll_until(image_320x200, timeout=15, message="a 320x200 image")
        np.testing.assert_array_equal(image, ramp(320, 200, image.attrib["BlockId"]))
        raw = pva.get(pv("Pva1:Image")).raw
        assert [d.size for d in raw.dimension] == [320, 200]
        assert raw.uniqueId >= 1 and raw.timeStamp.secondsPastEpoch > 0
        with PyepicsClient(camera_ioc) as ca:
            poll_until(lambda: ca.get(pv("cam1:ArrayCounter_RBV"))["value"] >= 5, timeout=15,
                       message="5 frames counted over CA")
            assert ca.get(pv("image1:ArraySize0_RBV"))["value"] == 320
            assert ca.get(pv("image1:ArraySize1_RBV"))["value"] == 200
            data = np.asarray(ca.get(pv("image1:ArrayData"))["value"], dtype=np.uint8)
        flat = data[:320 * 200].reshape(200, 320)
        start = int(flat[0, 0])             # block id mod 255 of the frame read
        np.testing.assert_array_equal(flat, ramp(320, 200, start))
        rate = poll_until(lambda: float(pva.get(pv("cam1:ArrayRate_RBV"))) > 15, timeout=10,
                          message="ArrayRate_RBV near the emulator's 25 Hz")
        assert rate
        assert int(pva.get(pv("cam1:StreamFramesIncomplete_RBV"))) == 0
    finally:
        pva.put(pv("cam1:Acquire"), 0, wait=True)


def test_multiple_mode_stops_after_num_images(camera_ioc: IocProcess, pva: Any) -> None:
    pv = camera_ioc.pv
    pva.put(pv("cam1:ImageMode"), "Multiple", wait=True)
    pva.put(pv("cam1:NumImages"), 3, wait=True)
    pva.put(pv("cam1:Acquire"), 1, wait=True)
    poll_until(lambda: pva.get(pv("cam1:Acquire_RBV")).raw.value.index == 0, timeout=15,
               message="acquisition ends by itself")
    assert int(pva.get(pv("cam1:NumImagesCounter_RBV"))) == 3
    pva.put(pv("cam1:ImageMode"), "Continuous", wait=True)


def test_settings_reach_camera_and_bad_ones_are_refused(camera_ioc: IocProcess,
                                                        pva: Any) -> None:
    pv = camera_ioc.pv
    pva.put(pv("cam1:AcquireTime"), 0.02, wait=True)
    assert float(pva.get(pv("cam1:AcquireTime_RBV"))) == pytest.approx(0.02)
    pva.put(pv("cam1:FrameRate"), 10.0, wait=True)
    assert float(pva.get(pv("cam1:AcquirePeriod_RBV"))) == pytest.approx(0.1)
    pva.put(pv("cam1:FrameRate"), 25.0, wait=True)
    pva.put(pv("cam1:AcquireTime"), 0.01, wait=True)
    with pytest.raises(RemoteError, match="SizeX 4000 exceeds the sensor width 2048"):
        pva.put(pv("cam1:SizeX"), 4000, wait=True)
    pva.put(pv("cam1:PixelFormat"), "Mono16", wait=True)
    assert pva.get(pv("cam1:DataType_RBV")).raw.value.index == 3     # UInt16
    pva.put(pv("cam1:PixelFormat"), "Mono8", wait=True)
    assert pva.get(pv("cam1:DataType_RBV")).raw.value.index == 1     # UInt8


def test_garbage_on_the_stream_port_changes_nothing(camera_ioc: IocProcess, pva: Any) -> None:
    """2,000 random and malformed datagrams to the negotiated port during acquisition:
    counted as malformed, images stay exact, the IOC keeps running."""
    pv = camera_ioc.pv
    port = int(pva.get(pv("cam1:StreamPort_RBV")))
    before = int(pva.get(pv("cam1:StreamPacketsMalformed_RBV")))
    rng = random.Random(7)
    pva.put(pv("cam1:ImageMode"), "Continuous", wait=True)
    pva.put(pv("cam1:Acquire"), 1, wait=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(2000):
                if i % 3 == 0:
                    datagram = rng.randbytes(rng.randrange(0, 1600))
                elif i % 3 == 1:
                    datagram = leader(rng.randrange(1 << 16), 65535, 65535)
                else:
                    datagram = gvsp(rng.randrange(1 << 16), rng.choice([1, 2, 3, 9]),
                                    rng.randrange(1 << 24), rng.randbytes(40))
                sock.sendto(datagram, ("127.0.0.1", port))
        poll_until(lambda: int(pva.get(pv("cam1:StreamPacketsMalformed_RBV"))) > before,
                   timeout=10, message="malformed datagrams counted")
        counter = int(pva.get(pv("cam1:ArrayCounter_RBV")))
        poll_until(lambda: int(pva.get(pv("cam1:ArrayCounter_RBV"))) > counter + 3,
                   timeout=10, message="frames keep coming")
        image = pva.get(pv("Pva1:Image"))
        np.testing.assert_array_equal(image, ramp(image.shape[1], image.shape[0],
                                                  image.attrib["BlockId"]))
    finally:
        pva.put(pv("cam1:Acquire"), 0, wait=True)


def test_image_larger_than_the_ca_waveform(camera_ioc: IocProcess, pva: Any) -> None:
    """max_pixels is 1048576 in gige.yaml: a 2048x1024 image still goes out over PVA,
    and image1:ArrayData alarms with a message saying what to raise."""
    pv = camera_ioc.pv
    pva.put(pv("cam1:SizeX"), 2048, wait=True)
    pva.put(pv("cam1:SizeY"), 1024, wait=True)
    pva.put(pv("cam1:ImageMode"), "Continuous", wait=True)
    pva.put(pv("cam1:Acquire"), 1, wait=True)
    try:
        raw = poll_until(lambda: (v := pva.get(pv("image1:ArrayData")).raw).alarm.severity
                         and v, timeout=15, message="ArrayData alarm")
        assert "image of 2097152 bytes exceeds image1:ArrayData's 1048576 elements" in (
            raw.alarm.message)
        poll_until(lambda: pva.get(pv("Pva1:Image")).shape == (1024, 2048), timeout=15,
                   message="the large image over PVA")
    finally:
        pva.put(pv("cam1:Acquire"), 0, wait=True)
        pva.put(pv("cam1:SizeX"), 512, wait=True)
        pva.put(pv("cam1:SizeY"), 512, wait=True)


def test_no_camera_is_an_alarm_not_a_crash(ioc_factory: IocFactory, tmp_path: Path) -> None:
    config = tmp_path / "nocam.yaml"
    (port,) = free_ports(1)          # nothing answers GVCP there
    config.write_text(f"ioc: {REPO / 'iocs' / 'gige' / 'ioc.py'}:GigECamera\n"
                      f"prefix: \"NOCAM:\"\nargs:\n  camera: 127.0.0.1\n  port: {port}\n")
    ioc = ioc_factory(config, name="nocam")
    with pva_client(ioc) as ctx:
        state = ctx.get(ioc.pv("cam1:DetectorState_RBV"))
        assert state.raw.value.index == 9          # Disconnected
        assert "no answer to READMEM" in state.raw.alarm.message
        with pytest.raises(RemoteError, match=r"camera 127\.0\.0\.1 is not connected"):
            ctx.put(ioc.pv("cam1:Acquire"), 1, wait=True)
