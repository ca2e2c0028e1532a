"""A GigE Vision camera IOC with areaDetector PV names (ADBase/ADDriver, NDStdArrays, NDPva).

The camera is reached by unicast on its GVCP port; the image stream (GVSP)
comes to a UDP port this IOC opens on a free port and negotiates with the
camera (stream channel 0). Images are served over PVA as NTNDArray
(``Pva1:Image``) and over CA as a waveform (``image1:ArrayData``).

When acquisition runs and no stream packet has arrived ``stream_timeout``
seconds after the start, the stream PVs go to INVALID/COMM alarm with a
message naming the negotiated port: the camera cannot reach it (typically a
pod behind NAT; run the IOC with host networking).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from typing import Any

import numpy as np
from gige_pvs import FORMAT_TYPES, NUMPY_TYPES, PIXEL_FORMATS, CameraPVs
from p4p.nt import NTNDArray
from p4p.server.asyncio import SharedPV

from podioc import PutRefused, Severity, Status, pv, scan, shutdown, startup
from podioc.gige import Camera, Frame, GigEError
from podioc.gige.camera import EXPOSURE, FRAME_RATE, GAIN
from podioc.gige.gvcp import GVCP_PORT

log = logging.getLogger("podioc.iocs.gige")


def _identity(value: Any) -> Any:
    return value


class GigECamera(CameraPVs):
    """One GigE Vision camera (e.g. aravis's emulator) as an areaDetector-like IOC."""

    def __init__(self, prefix: str = "", *, camera: str = "127.0.0.1", port: int = GVCP_PORT,
                 max_pixels: int = 1024 * 1024, packet_size: int = 1500,
                 stream_timeout: float = 1.0, destination: str | None = None) -> None:
        """``camera``, ``port``: the camera's GVCP address and port;
        ``max_pixels``: CA waveform length; ``destination``: the stream address
        to give the camera (default: this host's address on the route to it)."""
        super().__init__(prefix)
        self.address = camera
        self.port = port
        self.packet_size = packet_size
        self.stream_timeout = stream_timeout
        self.destination = destination
        self.array_data = self.add_pv(pv.waveform(max_pixels, dtype="uint8",
                                                  name="image1:ArrayData"), "array_data")
        self.cam: Camera | None = None
        self.lock = asyncio.Lock()
        self.nt = NTNDArray()
        self.image_pv: SharedPV | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[Frame] = collections.deque(maxlen=8)
        self.frames_dropped = 0
        self._pending_lock = threading.Lock()
        self._last_change = 0.0          # when the stream's packet count last changed
        self._last_count = 0
        self._ever_received = False      # since the acquisition started
        self._stream_alarmed = False
        self._rate_mark = (time.monotonic(), 0)
        self._unique = 0

    # -- PVA image -------------------------------------------------------------
    def pva_extras(self) -> dict[str, Any]:
        self.image_pv = SharedPV(nt=self.nt, initial=self.nt.wrap(np.zeros((0, 0), np.uint8)),
                                 wrap=_identity, unwrap=_identity)
        return {f"{self.prefix}Pva1:Image": self.image_pv}

    # -- connection ------------------------------------------------------------
    @startup
    async def _connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._open)
        except (GigEError, OSError) as exc:
            log.error("camera %s: %s", self.address, exc)
            self.detector_state.value = "Disconnected"
            self.status_message.value = "camera not connected"[:39]
            self.detector_state.set_alarm(Severity.INVALID, Status.COMM, str(exc))
            return
        await self._read_back()
        self.detector_state.value = "Idle"
        self.status_message.value = "Idle"

    def _open(self) -> None:
        cam = Camera(self.address, port=self.port)
        info = cam.connect()
        receiver = cam.open_stream(self._frame_from_thread, None, packet_size=self.packet_size,
                                   destination=self.destination)
        self.cam = cam
        self.manufacturer.value = info.manufacturer[:39]
        self.model.value = info.model[:39]
        self.serial_number.value = info.serial[:39]
        self.firmware.value = info.version[:39]
        self.stream_port.value = receiver.port
        log.info("camera %s (%s %s %s): stream on UDP port %d", self.address,
                 info.manufacturer, info.model, info.serial, receiver.port)

    @shutdown
    async def _disconnect(self) -> None:
        if self.cam is not None:
            cam, self.cam = self.cam, None
            await asyncio.to_thread(self._close, cam)

    @staticmethod
    def _close(cam: Camera) -> None:
        with contextlib.suppress(GigEError, OSError):
            cam.stop()
        cam.close()

    def _camera(self) -> Camera:
        if self.cam is None:
            raise PutRefused(f"camera {self.address} is not connected; check that it is on "
                             "and reachable, then restart the IOC")
        return self.cam

    async def _device(self, action: str, fn: Any, *args: Any) -> Any:
        """Run a blocking camera call; device errors refuse the put with their message."""
        async with self.lock:
            try:
                return await asyncio.to_thread(fn, *args)
            except (GigEError, OSError) as exc:
                log.error("%s: %s", action, exc)
                self.status_message.value = f"{action} failed"[:39]
                raise PutRefused(f"{action}: {exc}") from None

    async def _read_back(self) -> None:
        cam = self._camera()
        nodes = cam.features

        def read() -> dict[str, Any]:
            return {"w": nodes.get("Width"), "h": nodes.get("Height"),
                    "mw": nodes.get("SensorWidth"), "mh": nodes.get("SensorHeight"),
                    "fmt": nodes.get_enum("PixelFormat"),
                    "exp": nodes.get(cam.feature_name(EXPOSURE)),
                    "gain": nodes.get(cam.feature_name(GAIN)),
                    "rate": nodes.get(cam.feature_name(FRAME_RATE))}

        values = await self._device("read back", read)
        self.size_x_rbv.value = int(values["w"])
        self.size_y_rbv.value = int(values["h"])
        self.max_size_x.value = int(values["mw"])
        self.max_size_y.value = int(values["mh"])
        self.acquire_time_rbv.value = values["exp"] / 1e6
        self.gain_rbv.value = values["gain"]
        self.frame_rate_rbv.value = values["rate"]
        self.acquire_period_rbv.value = 1.0 / values["rate"] if values["rate"] else 0.0
        if values["fmt"] in PIXEL_FORMATS:
            self.pixel_format_rbv.value = values["fmt"]
            dtype, color = FORMAT_TYPES[values["fmt"]]
            self.data_type.value = self.data_type_rbv.value = dtype
            self.color_mode.value = self.color_mode_rbv.value = color

    # -- settings ----------------------------------------------------------------
    async def _set_feature(self, names: tuple[str, ...], value: float, label: str) -> None:
        cam = self._camera()
        await self._device(f"set {label}", lambda: cam.features.set(cam.feature_name(names),
                                                                    value))
        await self._read_back()

    @CameraPVs.acquire_time.on_put
    async def _put_exposure(self, value: float) -> None:
        await self._set_feature(EXPOSURE, value * 1e6, "AcquireTime")

    @CameraPVs.gain.on_put
    async def _put_gain(self, value: float) -> None:
        await self._set_feature(GAIN, value, "Gain")

    @CameraPVs.frame_rate.on_put
    async def _put_rate(self, value: float) -> None:
        await self._set_feature(FRAME_RATE, value, "FrameRate")

    @CameraPVs.acquire_period.on_put
    async def _put_period(self, value: float) -> None:
        await self._set_feature(FRAME_RATE, 1.0 / value, "AcquirePeriod")

    @CameraPVs.size_x.validator
    async def _check_x(self, value: int) -> None:
        if self.max_size_x.value and value > self.max_size_x.value:
            raise PutRefused(f"SizeX {value} exceeds the sensor width {self.max_size_x.value}")

    @CameraPVs.size_y.validator
    async def _check_y(self, value: int) -> None:
        if self.max_size_y.value and value > self.max_size_y.value:
            raise PutRefused(f"SizeY {value} exceeds the sensor height "
                             f"{self.max_size_y.value}")

    @CameraPVs.size_x.on_put
    async def _put_x(self, value: int) -> None:
        await self._set_feature(("Width",), value, "SizeX")

    @CameraPVs.size_y.on_put
    async def _put_y(self, value: int) -> None:
        await self._set_feature(("Height",), value, "SizeY")

    @CameraPVs.pixel_format.on_put
    async def _put_format(self, value: str) -> None:
        cam = self._camera()
        await self._device("set PixelFormat", cam.features.set_enum, "PixelFormat", value)
        await self._read_back()

    @CameraPVs.trigger_mode.on_put
    async def _put_trigger_mode(self, value: str) -> None:
        cam = self._camera()
        await self._device("set TriggerMode", cam.features.set_enum, "TriggerMode", value)
        self.trigger_mode_rbv.value = value

    @CameraPVs.trigger_source.on_put
    async def _put_trigger_source(self, value: str) -> None:
        cam = self._camera()
        await self._device("set TriggerSource", cam.features.set_enum, "TriggerSource", value)
        self.trigger_source_rbv.value = value

    @CameraPVs.image_mode.on_put
    async def _put_mode(self, value: str) -> None:
        self.image_mode_rbv.value = value

    @CameraPVs.num_images.on_put
    async def _put_num(self, value: int) -> None:
        self.num_images_rbv.value = value

    @CameraPVs.array_counter.on_put
    async def _put_counter(self, value: int) -> None:
        self.array_counter_rbv.value = value

    @CameraPVs.acquire.validator
    async def _check_acquire(self, value: str) -> None:
        if value == "Acquire":
            self._camera()

    @CameraPVs.acquire.on_put
    async def _put_acquire(self, value: str) -> None:
        cam = self._camera()
        if value == "Acquire" and self.acquire_rbv.value != "Acquire":
            self.num_images_counter.value = 0
            self._last_change = time.monotonic()
            self._last_count = cam.stream.assembler.stats.packets if cam.stream else 0
            self._ever_received = False
            self._clear_stream_alarm()
            await self._device("AcquisitionStart", cam.start)
            self.acquire_rbv.value = "Acquire"
            self.detector_state.value = "Acquire"
            self.status_message.value = "Acquiring"
        elif value == "Done" and self.acquire_rbv.value == "Acquire":
            await self._stop_acquisition("Idle")

    async def _stop_acquisition(self, message: str) -> None:
        cam = self._camera()
        await self._device("AcquisitionStop", cam.stop)
        self.acquire.value = "Done"
        self.acquire_rbv.value = "Done"
        if not self._stream_alarmed:
            self.detector_state.value = "Idle"
        self.status_message.value = message

    # -- frames --------------------------------------------------------------------
    def _frame_from_thread(self, frame: Frame) -> None:
        """Stream thread: queue the frame for the loop (the oldest go when it falls behind)."""
        with self._pending_lock:
            scheduled = bool(self._pending)
            if len(self._pending) == self._pending.maxlen:
                self.frames_dropped += 1
            self._pending.append(frame)
        if not scheduled and self._loop is not None:
            self._loop.call_soon_threadsafe(self._publish_pending)

    def _publish_pending(self) -> None:
        with self._pending_lock:
            frames = list(self._pending)
            self._pending.clear()
        for frame in frames:
            if self.acquire_rbv.value == "Acquire" and not self._quota_reached():
                self._publish(frame)

    def _quota_reached(self) -> bool:
        """Single/Multiple mode: the images asked for are served (more may be in flight)."""
        mode = self.image_mode_rbv.value
        wanted = 1 if mode == "Single" else self.num_images_rbv.value
        return mode != "Continuous" and self.num_images_counter.value >= wanted

    def _publish(self, frame: Frame) -> None:
        image = frame.image
        self._unique += 1
        now = time.time()
        height, width = image.shape[:2]
        if self.image_pv is not None:
            data_type = NUMPY_TYPES.get(str(image.dtype), "UInt8")
            value = self.nt.wrap(image, timestamp=now, attrib={
                "ColorMode": 0 if image.ndim == 2 else 2, "BlockId": frame.block_id,
                "PixelFormat": frame.pixel_format, "DataType": data_type})
            value["uniqueId"] = self._unique
            sec, ns = divmod(int(now * 1e9), 1_000_000_000)
            value["dataTimeStamp"] = {"secondsPastEpoch": sec, "nanoseconds": ns}
            self.image_pv.post(value)
        flat = image.reshape(-1).view(np.uint8)
        limit = self.array_data.spec.max_length
        if flat.size <= limit:
            self.array_data.value = flat
            if self.array_data.alarm.severity:
                self.array_data.set_alarm()
        elif not self.array_data.alarm.severity:
            message = (f"image of {flat.size} bytes exceeds image1:ArrayData's {limit} "
                       "elements: raise args.max_pixels (and EPICS_CA_MAX_ARRAY_BYTES)")
            log.warning("%s", message)
            self.array_data.set_alarm(Severity.MAJOR, Status.HWLIMIT, message)
        if (width, height, image.nbytes) != (self.array_size0.value, self.array_size1.value,
                                             self.array_size.value):
            self.array_size0.value = width
            self.array_size1.value = height
            self.array_size2.value = image.shape[2] if image.ndim == 3 else 0
            self.array_size_z.value = self.array_size2.value
            self.cam_size0.value, self.cam_size1.value = width, height
            self.cam_size2.value = self.array_size2.value
            self.array_size_x.value = width
            self.array_size_y.value = height
            self.array_size.value = image.nbytes
        self.unique_id.value = self._unique
        self.cam_unique_id.value = self._unique
        self.image_counter.value = self._unique
        self.array_counter_rbv.value = self.array_counter_rbv.value + 1
        self.num_images_counter.value = self.num_images_counter.value + 1
        if self._quota_reached():
            self._loop_task(self._stop_acquisition("Done"))

    def _loop_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- stream watchdog and statistics ----------------------------------------------
    @scan(period=0.2)
    async def _watch(self) -> None:
        cam = self.cam
        if cam is None or cam.stream is None:
            return
        stream = cam.stream
        stats = stream.assembler.stats
        self.stream_packets.value = min(stats.packets, 2**31 - 1)
        self.stream_frames.value = min(stats.frames, 2**31 - 1)
        self.stream_incomplete.value = min(stats.frames_incomplete, 2**31 - 1)
        self.stream_missing.value = min(stats.packets_missing, 2**31 - 1)
        self.stream_malformed.value = min(stats.packets_malformed, 2**31 - 1)
        self.stream_dropped.value = min(self.frames_dropped, 2**31 - 1)
        now = time.monotonic()
        mark_time, mark_count = self._rate_mark
        if now - mark_time >= 1.0:
            count = self.array_counter_rbv.value
            self.array_rate.value = (count - mark_count) / (now - mark_time)
            self._rate_mark = (now, count)
        if cam.heartbeat_error:
            self.detector_state.set_alarm(Severity.MAJOR, Status.COMM, cam.heartbeat_error)
        elif self.detector_state.alarm.status == Status.COMM:
            self.detector_state.set_alarm()
        acquiring = self.acquire_rbv.value == "Acquire"
        if stats.packets != self._last_count:
            self._last_count, self._last_change = stats.packets, now
            self._ever_received = True
        # a slow frame rate must not look like a silent stream
        period = self.acquire_period_rbv.value or 0.0
        limit = max(self.stream_timeout, 2.5 * period)
        silent_for = now - self._last_change
        if acquiring and silent_for > limit:
            if not self._stream_alarmed:
                self._raise_stream_alarm(stream.port, silent_for)
        elif self._stream_alarmed and silent_for <= limit:
            self._clear_stream_alarm()
            self.stream_status.value = "receiving"
            self.detector_state.value = "Acquire" if acquiring else "Idle"
        elif not self._stream_alarmed and acquiring:
            self.stream_status.value = "receiving"

    def _clear_stream_alarm(self) -> None:
        self._stream_alarmed = False
        for live in (self.stream_frames, self.stream_port, self.stream_status):
            live.set_alarm()

    def _raise_stream_alarm(self, port: int, waited: float) -> None:
        self._stream_alarmed = True
        if self._ever_received:
            message = (f"GVSP stream on negotiated port UDP {port} stopped {waited:.1f} s ago "
                       f"during acquisition: camera {self.address} stopped sending "
                       "(disconnected, powered off or reconfigured?)")
        else:
            message = (f"no GVSP packet on negotiated stream port UDP {port} {waited:.1f} s "
                       f"after acquisition start: camera {self.address} cannot reach this "
                       "host's stream port (behind NAT? run the IOC with host networking)")
        log.error("%s", message)
        for live in (self.stream_frames, self.stream_port, self.stream_status):
            live.set_alarm(Severity.INVALID, Status.COMM, message)
        self.stream_status.value = f"no stream on UDP port {port}"
        self.detector_state.value = "Error"
        self.status_message.value = f"no stream on UDP port {port}"
