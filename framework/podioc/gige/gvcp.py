"""GVCP, the GigE Vision control protocol (UDP 3956): packets and a blocking client.

Commands carry an 8-byte header (key 0x42, flags, command, payload length,
request id); acks echo the request id as ``ack_id`` with a status (0 = success).
The client retries a command with the same request id until it is acknowledged,
ignores stale acks (other ids), and raises :class:`GvcpTimeout` or
:class:`GvcpError` (NACK) with the device and register named.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

from .errors import GvcpError, GvcpTimeout

GVCP_PORT = 3956
KEY = 0x42
FLAG_ACK_REQUIRED = 0x01
FLAG_BROADCAST_ACK = 0x10

DISCOVERY_CMD, DISCOVERY_ACK = 0x0002, 0x0003
READREG_CMD, READREG_ACK = 0x0080, 0x0081
WRITEREG_CMD, WRITEREG_ACK = 0x0082, 0x0083
READMEM_CMD, READMEM_ACK = 0x0084, 0x0085
WRITEMEM_CMD, WRITEMEM_ACK = 0x0086, 0x0087

#: Largest READMEM payload a device must support (bytes, multiple of 4).
READMEM_MAX = 512

# Bootstrap registers (GigE Vision 2.x, table 28).
REG_MANUFACTURER = 0x0048
REG_MODEL = 0x0068
REG_DEVICE_VERSION = 0x0088
REG_SERIAL = 0x00D8
REG_XML_URL_0 = 0x0200
REG_N_STREAM_CHANNELS = 0x0904
REG_HEARTBEAT_TIMEOUT = 0x0938
REG_CCP = 0x0A00
REG_SCP0 = 0x0D00
REG_SCPS0 = 0x0D04
REG_SCPD0 = 0x0D08
REG_SCDA0 = 0x0D18

CCP_CONTROL = 0x2

STATUS_NAMES = {
    0x8001: "NOT_IMPLEMENTED", 0x8002: "INVALID_PARAMETER", 0x8003: "INVALID_ADDRESS",
    0x8004: "WRITE_PROTECT", 0x8005: "BAD_ALIGNMENT", 0x8006: "ACCESS_DENIED",
    0x8007: "BUSY", 0x800C: "PACKET_UNAVAILABLE", 0x800E: "WRONG_CONFIG",
    0x8FFF: "ERROR",
}

_HEADER = struct.Struct(">BBHHH")
_ACK = struct.Struct(">HHHH")


def command(cmd: int, payload: bytes, req_id: int, *, flags: int = FLAG_ACK_REQUIRED) -> bytes:
    """One GVCP command datagram."""
    return _HEADER.pack(KEY, flags, cmd, len(payload), req_id & 0xFFFF) + payload


@dataclass(frozen=True)
class Ack:
    """A parsed GVCP acknowledge."""

    status: int
    answer: int
    ack_id: int
    payload: bytes


def parse_ack(data: bytes) -> Ack | None:
    """The ack in ``data``, or None when it is too short or its length field lies."""
    if len(data) < _ACK.size:
        return None
    status, answer, length, ack_id = _ACK.unpack_from(data)
    payload = data[_ACK.size:_ACK.size + length]
    if len(payload) != length:
        return None
    return Ack(status, answer, ack_id, payload)


def readreg_payload(addresses: list[int]) -> bytes:
    """READREG_CMD payload: the 32-bit addresses."""
    return b"".join(struct.pack(">I", a) for a in addresses)


def writereg_payload(pairs: list[tuple[int, int]]) -> bytes:
    """WRITEREG_CMD payload: (address, value) pairs."""
    return b"".join(struct.pack(">II", a, v & 0xFFFFFFFF) for a, v in pairs)


def readmem_payload(address: int, count: int) -> bytes:
    """READMEM_CMD payload: address, reserved, byte count (multiple of 4)."""
    return struct.pack(">IHH", address, 0, count)


def status_text(status: int) -> str:
    """``0x8003 INVALID_ADDRESS``."""
    return f"0x{status:04x} {STATUS_NAMES.get(status, 'unknown status')}"


class GvcpClient:
    """A control channel to one device: thread-safe, one command in flight.

    ``timeout`` is per attempt; a command is sent ``retries + 1`` times with
    the same request id before :class:`GvcpTimeout` is raised.
    """

    def __init__(self, host: str, port: int = GVCP_PORT, *, timeout: float = 0.2,
                 retries: int = 4, bind: str = "") -> None:
        self.host, self.port = host, port
        self.timeout, self.retries = timeout, retries
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((bind, 0))
        self._lock = threading.Lock()
        self._req_id = 0
        self.retransmissions = 0

    @property
    def local_address(self) -> tuple[str, int]:
        """The (address, port) the device sees this host at."""
        addr: tuple[str, int] = self._sock.getsockname()
        return addr

    def local_address_towards_device(self) -> str:
        """The interface address the kernel routes to the device from."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((self.host, self.port))
            return str(probe.getsockname()[0])
        finally:
            probe.close()

    def close(self) -> None:
        """Close the socket (further commands raise OSError)."""
        self._sock.close()

    def _next_id(self) -> int:
        self._req_id = self._req_id % 0xFFFF + 1    # 0 is reserved
        return self._req_id

    def transact(self, cmd: int, payload: bytes, expect: int, what: str) -> Ack:
        """Send a command and wait for its ack; retries on silence."""
        with self._lock:
            req_id = self._next_id()
            packet = command(cmd, payload, req_id)
            for attempt in range(self.retries + 1):
                if attempt:
                    self.retransmissions += 1
                self._sock.sendto(packet, (self.host, self.port))
                deadline = time.monotonic() + self.timeout
                while (left := deadline - time.monotonic()) > 0:
                    self._sock.settimeout(left)
                    try:
                        data, _ = self._sock.recvfrom(2048)
                    except TimeoutError:
                        break
                    ack = parse_ack(data)
                    if ack is None or ack.ack_id != req_id:
                        continue      # stale ack of an earlier attempt, or noise
                    if ack.status != 0:
                        raise GvcpError(f"camera {self.host}: {what} refused with "
                                        f"{status_text(ack.status)}", ack.status)
                    if ack.answer != expect:
                        continue
                    return ack
            raise GvcpTimeout(f"camera {self.host}:{self.port}: no answer to {what} after "
                              f"{self.retries + 1} attempts of {self.timeout:g} s; is the "
                              "camera on and reachable from this host?")

    def read_registers(self, addresses: list[int]) -> list[int]:
        """READREG: the 32-bit values at ``addresses``."""
        what = "READREG " + ", ".join(f"0x{a:x}" for a in addresses)
        ack = self.transact(READREG_CMD, readreg_payload(addresses), READREG_ACK, what)
        if len(ack.payload) != 4 * len(addresses):
            raise GvcpError(f"camera {self.host}: {what}: ack has {len(ack.payload)} bytes, "
                            f"expected {4 * len(addresses)}", 0)
        return list(struct.unpack(f">{len(addresses)}I", ack.payload))

    def read_register(self, address: int) -> int:
        """READREG of one address."""
        return self.read_registers([address])[0]

    def write_register(self, address: int, value: int) -> None:
        """WRITEREG of one 32-bit value."""
        self.transact(WRITEREG_CMD, writereg_payload([(address, value)]), WRITEREG_ACK,
                      f"WRITEREG 0x{address:x}={value}")

    def read_memory(self, address: int, size: int) -> bytes:
        """READMEM of ``size`` bytes, split into device-sized chunks."""
        out = bytearray()
        while len(out) < size:
            want = min(READMEM_MAX, size - len(out))
            count = (want + 3) & ~3
            addr = address + len(out)
            ack = self.transact(READMEM_CMD, readmem_payload(addr, count), READMEM_ACK,
                                f"READMEM 0x{addr:x} ({count} bytes)")
            if len(ack.payload) < 4 or len(ack.payload) - 4 < want:
                raise GvcpError(f"camera {self.host}: READMEM 0x{addr:x}: short answer "
                                f"({len(ack.payload)} bytes)", 0)
            out += ack.payload[4:4 + want]
        return bytes(out)

    def read_string(self, address: int, size: int) -> str:
        """A NUL-terminated string register."""
        return self.read_memory(address, size).split(b"\0", 1)[0].decode("utf-8", "replace")
