"""One GigE Vision camera: control channel, heartbeat, features and stream."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import gvcp
from .errors import GenICamError, GigEError
from .genicam import NodeMap, parse_url, unpack_xml
from .gvsp import DEFAULT_MAX_SIZE, PACKET_OVERHEAD, Frame, FrameAssembler
from .stream import StreamReceiver

log = logging.getLogger("podioc.gige")

#: Feature names tried in order (SFNC names first, then older GigE names).
EXPOSURE = ("ExposureTime", "ExposureTimeAbs")
GAIN = ("Gain", "GainRaw")
FRAME_RATE = ("AcquisitionFrameRate", "AcquisitionFrameRateAbs")


@dataclass(frozen=True)
class CameraInfo:
    """Identity read from the bootstrap registers."""

    manufacturer: str
    model: str
    version: str
    serial: str
    xml_url: str


class Camera:
    """A GigE Vision camera at ``host`` (blocking API: call it from a worker thread).

    ``connect`` takes the control channel, starts the heartbeat and loads the
    GenICam XML; ``open_stream`` binds a stream socket on a free port and
    points stream channel 0 at it; ``start``/``stop`` run acquisition.
    """

    def __init__(self, host: str, *, port: int = gvcp.GVCP_PORT, timeout: float = 0.2,
                 retries: int = 4) -> None:
        self.host = host
        self.client = gvcp.GvcpClient(host, port, timeout=timeout, retries=retries)
        self.info: CameraInfo | None = None
        self.nodes: NodeMap | None = None
        self.stream: StreamReceiver | None = None
        self.heartbeat_error = ""
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- control --------------------------------------------------------------
    def connect(self, *, heartbeat: bool = True) -> CameraInfo:
        """Read identity, take control, load the XML; raises GigEError subclasses."""
        c = self.client
        url = c.read_string(gvcp.REG_XML_URL_0, 512)
        self.info = CameraInfo(manufacturer=c.read_string(gvcp.REG_MANUFACTURER, 32),
                               model=c.read_string(gvcp.REG_MODEL, 32),
                               version=c.read_string(gvcp.REG_DEVICE_VERSION, 32),
                               serial=c.read_string(gvcp.REG_SERIAL, 16), xml_url=url)
        c.write_register(gvcp.REG_CCP, gvcp.CCP_CONTROL)
        location = parse_url(url)
        xml = unpack_xml(location, c.read_memory(location.address, location.size))
        self.nodes = NodeMap(xml, c, source=f"camera {self.host} XML {location.filename}")
        if heartbeat:
            self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                               name=f"gvcp-heartbeat-{self.host}")
            self._heartbeat.start()
        return self.info

    def _beat(self) -> None:
        try:
            timeout_ms = self.client.read_register(gvcp.REG_HEARTBEAT_TIMEOUT)
        except GigEError:
            timeout_ms = 3000
        period = max(0.1, min(timeout_ms / 1000 / 3, 1.0))
        while not self._stop.wait(period):
            try:
                self.client.read_register(gvcp.REG_CCP)
                self.heartbeat_error = ""
            except (GigEError, OSError) as exc:
                if str(exc) != self.heartbeat_error:
                    log.warning("heartbeat: %s", exc)
                self.heartbeat_error = str(exc)

    @property
    def features(self) -> NodeMap:
        """The node map (after ``connect``)."""
        if self.nodes is None:
            raise GenICamError(f"camera {self.host}: not connected")
        return self.nodes

    def feature_name(self, candidates: tuple[str, ...]) -> str:
        """The first of ``candidates`` this camera has; GenICamError when none."""
        name = self.features.first(*candidates)
        if name is None:
            raise GenICamError(f"camera {self.host}: has none of the features "
                               f"{', '.join(candidates)}")
        return name

    # -- stream ---------------------------------------------------------------
    def open_stream(self, on_frame: Callable[[Frame], None],
                    on_error: Callable[[str], None] | None = None, *,
                    packet_size: int = 1500, bind: str = "",
                    destination: str | None = None) -> StreamReceiver:
        """Bind a free port, tell stream channel 0 to send there; returns the receiver.

        ``destination`` is the address the camera sends to (default: this
        host's address on the route to the camera).
        """
        c = self.client
        c.write_register(gvcp.REG_SCPS0, packet_size)
        actual = c.read_register(gvcp.REG_SCPS0) & 0xFFFF
        nodes = self.features
        sensor = [nodes.get(n) for n in ("SensorWidth", "SensorHeight") if nodes.has(n)]
        # the largest frame the camera can send: full sensor, 3 channels of 2 bytes
        max_size = int(sensor[0] * sensor[1] * 6) if len(sensor) == 2 else DEFAULT_MAX_SIZE
        assembler = FrameAssembler(actual - PACKET_OVERHEAD, on_frame, on_error,
                                   max_size=max_size)
        receiver = StreamReceiver(assembler, bind=bind, source=socket.gethostbyname(c.host))
        address = destination or c.local_address_towards_device()
        octets = [int(part) for part in address.split(".")]
        c.write_register(gvcp.REG_SCDA0, int.from_bytes(bytes(octets), "big"))
        c.write_register(gvcp.REG_SCP0, receiver.port)
        receiver.start()
        self.stream = receiver
        log.info("camera %s streams to %s:%d (packets of %d bytes, receive buffer %d bytes)",
                 self.host, address, receiver.port, actual, receiver.rcvbuf)
        return receiver

    def start(self) -> None:
        """AcquisitionStart."""
        self.features.execute("AcquisitionStart")

    def stop(self) -> None:
        """AcquisitionStop."""
        self.features.execute("AcquisitionStop")

    def close(self) -> None:
        """Stop heartbeat and stream, release control (best effort), close sockets."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(2.0)
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        try:
            self.client.write_register(gvcp.REG_SCP0, 0)
            self.client.write_register(gvcp.REG_CCP, 0)
        except (GigEError, OSError):
            pass
        self.client.close()
