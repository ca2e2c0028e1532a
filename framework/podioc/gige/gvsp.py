"""GVSP, the GigE Vision stream protocol: packets (sans-io) and frame assembly.

A block (one image) is a leader (packet id 0), data packets 1..N of equal
size (the last may be shorter) and a trailer (N+1). The assembler places each
data packet at ``(packet_id - 1) * chunk`` in the frame buffer, tracks which
ids arrived, and closes a block when its trailer arrives or a newer block
starts; a block whose data has gaps (or whose leader was lost) is counted as
incomplete and never delivered; every missing packet (leader, data,
trailer) is counted. A lost trailer alone does not make a frame incomplete.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

LEADER, TRAILER, PAYLOAD = 1, 2, 3
EXTENDED_ID = 0x80
PAYLOAD_IMAGE = 0x0001
#: IP (20) + UDP (8) + GVSP (8) header bytes counted in the packet size register.
PACKET_OVERHEAD = 36

#: Largest image a leader may announce unless the host says otherwise (bytes).
DEFAULT_MAX_SIZE = 64 * 1024 * 1024

_HEADER = struct.Struct(">HHI")
_EXT_HEADER = struct.Struct(">HHIQI")
_LEADER = struct.Struct(">HHQIIIIIHH")

#: Pixel formats this host turns into arrays: PFNC value → (name, dtype, channels).
PIXEL_FORMATS: dict[int, tuple[str, str, int]] = {
    0x01080001: ("Mono8", "uint8", 1),
    0x01100007: ("Mono16", "uint16", 1),
    0x02180014: ("RGB8", "uint8", 3),
    0x01080008: ("BayerGR8", "uint8", 1),
    0x01080009: ("BayerRG8", "uint8", 1),
    0x0108000A: ("BayerGB8", "uint8", 1),
    0x0108000B: ("BayerBG8", "uint8", 1),
}


class MalformedPacket(ValueError):
    """A GVSP datagram that cannot be a valid packet (the reason is the message)."""


@dataclass(frozen=True)
class Packet:
    """A parsed GVSP packet; ``data`` is the payload after the header."""

    status: int
    block_id: int
    format: int
    packet_id: int
    data: memoryview


def parse_packet(datagram: bytes | bytearray | memoryview) -> Packet:
    """Parse one datagram; raises :class:`MalformedPacket`."""
    view = memoryview(datagram)
    if len(view) < _HEADER.size:
        raise MalformedPacket(f"{len(view)} bytes is shorter than a GVSP header")
    status, block_id, info = _HEADER.unpack_from(view)
    fmt = info >> 24
    if fmt & EXTENDED_ID:
        if len(view) < _EXT_HEADER.size:
            raise MalformedPacket("extended-id packet shorter than its header")
        _, _, _, block64, packet32 = _EXT_HEADER.unpack_from(view)
        return Packet(status, block64, fmt & 0x0F, packet32, view[_EXT_HEADER.size:])
    return Packet(status, block_id, fmt & 0x0F, info & 0xFFFFFF, view[_HEADER.size:])


@dataclass(frozen=True)
class Leader:
    """An image leader: what the block's payload is."""

    payload_type: int
    timestamp: int
    pixel_format: int
    width: int
    height: int
    offset_x: int
    offset_y: int

    @property
    def dtype(self) -> str:
        """numpy dtype of one pixel component."""
        return PIXEL_FORMATS[self.pixel_format][1]

    @property
    def channels(self) -> int:
        """Components per pixel (3 for RGB8)."""
        return PIXEL_FORMATS[self.pixel_format][2]

    @property
    def size(self) -> int:
        """Payload bytes of the image."""
        return self.width * self.height * self.channels * np.dtype(self.dtype).itemsize


def parse_leader(data: memoryview) -> Leader:
    """An image leader's fields; raises :class:`MalformedPacket`."""
    if len(data) < _LEADER.size - 4:
        raise MalformedPacket(f"leader of {len(data)} bytes is too short")
    padded = bytes(data[:_LEADER.size]).ljust(_LEADER.size, b"\0")
    _, ptype, ts, pixfmt, width, height, ox, oy, _, _ = _LEADER.unpack(padded)
    if ptype & 0x3FFF != PAYLOAD_IMAGE:
        raise MalformedPacket(f"payload type 0x{ptype:04x} is not an image")
    if pixfmt not in PIXEL_FORMATS:
        raise MalformedPacket(f"pixel format 0x{pixfmt:08x} is not supported")
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise MalformedPacket(f"image size {width}x{height} is not plausible")
    return Leader(ptype & 0x3FFF, ts, pixfmt, width, height, ox, oy)


@dataclass
class Frame:
    """One assembled image."""

    block_id: int
    timestamp: int            # device ticks from the leader
    pixel_format: str
    image: np.ndarray         # (height, width) or (height, width, 3)


@dataclass
class StreamStats:
    """Counters of one stream since it was opened."""

    packets: int = 0
    frames: int = 0
    frames_incomplete: int = 0
    packets_missing: int = 0
    packets_malformed: int = 0
    packets_ignored: int = 0     # stale blocks, duplicates, packets before a leader
    last_error: str = ""


@dataclass
class _Block:
    block_id: int
    leader: Leader | None        # None: the leader was lost, the block is only counted
    buffer: bytearray
    n_data: int
    received: bytearray = field(default_factory=bytearray)
    count: int = 0


class FrameAssembler:
    """Feed it datagrams; it calls ``on_frame`` with each complete frame.

    ``chunk`` is the data bytes per packet (packet size minus
    :data:`PACKET_OVERHEAD`); a leader announcing more than ``max_size``
    bytes is refused as malformed (no buffer is allocated for it).
    ``on_error`` receives a message for each malformed packet and each
    incomplete frame.
    """

    def __init__(self, chunk: int, on_frame: Callable[[Frame], None],
                 on_error: Callable[[str], None] | None = None, *,
                 max_size: int = DEFAULT_MAX_SIZE) -> None:
        if chunk <= 0:
            raise ValueError(f"packet data size {chunk} must be positive")
        self.chunk = chunk
        self.max_size = max_size
        self.on_frame = on_frame
        self.on_error = on_error or (lambda message: None)
        self.stats = StreamStats()
        self._block: _Block | None = None
        self._last_closed: int | None = None

    def feed(self, datagram: bytes | bytearray | memoryview) -> None:
        """Process one datagram (never raises for bad input)."""
        self.stats.packets += 1
        try:
            packet = parse_packet(datagram)
            self._handle(packet)
        except MalformedPacket as exc:
            self.stats.packets_malformed += 1
            self.stats.last_error = f"malformed GVSP packet: {exc}"
            self.on_error(self.stats.last_error)

    def _handle(self, packet: Packet) -> None:
        block = self._block
        if packet.format == LEADER:
            if block is not None and block.block_id == packet.block_id:
                self.stats.packets_ignored += 1
                return
            if packet.block_id == self._last_closed:
                self.stats.packets_ignored += 1
                return
            leader = parse_leader(packet.data)
            if leader.size > self.max_size:
                raise MalformedPacket(f"leader announces {leader.width}x{leader.height} "
                                      f"{PIXEL_FORMATS[leader.pixel_format][0]} "
                                      f"({leader.size} bytes), more than the "
                                      f"{self.max_size} bytes allowed")
            if block is not None:
                self._close(block, trailer_seen=False)
            n_data = max(1, -(-leader.size // self.chunk))
            self._block = _Block(packet.block_id, leader, bytearray(leader.size), n_data,
                                 bytearray(n_data + 2))
            self._block.received[0] = 1
            return
        if packet.format not in (PAYLOAD, TRAILER):
            raise MalformedPacket(f"packet format {packet.format} is not leader/payload/trailer")
        if block is None or block.block_id != packet.block_id:
            if packet.block_id == self._last_closed:
                self.stats.packets_ignored += 1   # late packet of a closed block
                return
            if block is not None:
                self._close(block, trailer_seen=False)
            block = self._block = _Block(packet.block_id, None, bytearray(), 0, bytearray())
        if packet.format == TRAILER:
            if block.leader is None:
                block.n_data = max(packet.packet_id - 1, block.count)
            self._close(block, trailer_seen=True)
            return
        pid = packet.packet_id
        if block.leader is None:                  # headless block: count packets only
            block.count += 1
            return
        if not 1 <= pid <= block.n_data:
            raise MalformedPacket(f"packet id {pid} outside 1..{block.n_data} of block "
                                  f"{block.block_id}")
        start = (pid - 1) * self.chunk
        length = min(len(packet.data), len(block.buffer) - start)
        if len(packet.data) > self.chunk:
            raise MalformedPacket(f"payload of {len(packet.data)} bytes exceeds the packet "
                                  f"size {self.chunk}")
        if block.received[pid]:
            self.stats.packets_ignored += 1
            return
        block.buffer[start:start + length] = packet.data[:length]
        block.received[pid] = 1
        block.count += 1

    def _close(self, block: _Block, *, trailer_seen: bool) -> None:
        self._block = None
        self._last_closed = block.block_id
        missing_data = max(block.n_data - block.count, 0)
        missing = missing_data + (0 if trailer_seen else 1) + (1 if block.leader is None else 0)
        if block.leader is None and not trailer_seen:
            missing = max(missing, 2)             # at least the leader and the trailer
        self.stats.packets_missing += missing
        leader = block.leader
        if leader is None or missing_data:
            self.stats.frames_incomplete += 1
            what = "leader" if leader is None else f"{missing_data} data packets"
            self.stats.last_error = (f"frame {block.block_id} incomplete: {what} missing")
            self.on_error(self.stats.last_error)
            return
        shape: tuple[int, ...] = (leader.height, leader.width)
        if leader.channels > 1:
            shape += (leader.channels,)
        image = np.frombuffer(block.buffer, dtype=leader.dtype).reshape(shape)
        self.stats.frames += 1
        self.on_frame(Frame(block.block_id, leader.timestamp,
                            PIXEL_FORMATS[leader.pixel_format][0], image))
