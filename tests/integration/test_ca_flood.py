"""Flooded CA monitors: clients that stall and vanish mid-flood cannot break the server.

caproto's server iterates over a deque of subscriptions while it awaits a put
on each client's bounded queue; a client that disconnects while the queue of
another is full mutates that deque ("RuntimeError: deque mutated during
iteration") and kills the server's subscription loop. podioc's CA layer
(``protocols/ca/``) never awaits there and bounds each subscription's
backlog. Here, while the IOC floods, one client subscribes and never reads
for most of the flood, and others subscribe, stop reading until the server's
updates pile up, and reset their connection, again and again (this pattern
kills caproto 1.3's own server within seconds). Afterwards the server must
still answer on both protocols, a client that kept reading must get the
newest value promptly, and the log must be clean.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import termios
import threading
import time
from functools import partial
from pathlib import Path

import caproto as ca

from harness import IocProcess, ca_pv, caproto_client, poll_until, pva_client

FLOOD_IOC = Path(__file__).resolve().parent / "iocs" / "flood.py"
FLOOD_SECONDS = 6.0
MAX_CYCLES = 40
HEADER = struct.Struct(">HHHHII")
DBR_DOUBLE = 6
DBE_VALUE_ALARM = 1 | 4


def has_piled_up(client: RawMonitor) -> bool:
    """True once more than 16 KiB of the server's updates wait unread."""
    return client.unread() > 16384


class RawMonitor:
    """A minimal CA client on a raw socket: subscribes to doubles, reads (or not)."""

    def __init__(self, ioc: IocProcess, names: list[str], timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", ioc.ca_port), timeout=timeout)
        self.buffer = b""
        self.latest: dict[int, float] = {}
        self.t_latest: dict[int, float] = {}
        hello = [ca.VersionRequest(0, 13), ca.HostNameRequest("flood-test"),
                 ca.ClientNameRequest("flood-test")]
        creates = [ca.CreateChanRequest(name, cid, 13) for cid, name in enumerate(names)]
        self.sock.sendall(b"".join(bytes(m) for m in hello + creates))
        sids: dict[int, tuple[int, int]] = {}
        deadline = time.monotonic() + timeout
        while len(sids) < len(names):
            assert time.monotonic() < deadline, f"channels {names} did not connect"
            for cmd, _dtype, count, p1, p2, _ in self._messages(self.sock.recv(65536)):
                if cmd == ca.CreateChanResponse.ID:
                    sids[p1] = (p2, count)
        self.sock.sendall(b"".join(
            bytes(ca.EventAddRequest(DBR_DOUBLE, count, sid, cid, 0, 0, 0, DBE_VALUE_ALARM))
            for cid, (sid, count) in sids.items()))

    def _messages(self, data: bytes) -> list[tuple[int, int, int, int, int, bytes]]:
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data
        out = []
        offset = 0
        while offset + 16 <= len(self.buffer):
            cmd, size, dtype, count, p1, p2 = HEADER.unpack_from(self.buffer, offset)
            head = 16
            if size == 0xFFFF and count == 0:
                if offset + 24 > len(self.buffer):
                    break
                size, count = struct.unpack_from(">II", self.buffer, offset + 16)
                head = 24
            if offset + head + size > len(self.buffer):
                break
            out.append((cmd, dtype, count, p1, p2,
                        self.buffer[offset + head:offset + head + size]))
            offset += head + size
        self.buffer = self.buffer[offset:]
        return out

    def read_for(self, seconds: float) -> None:
        """Read and decode updates for ``seconds`` (the subscription id is the cid)."""
        end = time.monotonic() + seconds
        self.sock.settimeout(0.05)
        while time.monotonic() < end:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            now = time.monotonic()
            for cmd, _, _, _, subscription, payload in self._messages(data):
                if cmd == ca.EventAddResponse.ID and len(payload) >= 8:
                    self.latest[subscription] = struct.unpack_from(">d", payload)[0]
                    self.t_latest[subscription] = now

    def unread(self) -> int:
        """Bytes the server has sent that this client has not read."""
        raw = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])

    def reset(self) -> None:
        """Vanish without a goodbye: close with a TCP reset."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def test_clients_vanishing_mid_flood_leave_the_server_serving(ioc_factory) -> None:  # type: ignore[no-untyped-def]
    ioc = ioc_factory(FLOOD_IOC, name="flood")
    names = [ioc.pv("COUNTER"), ioc.pv("WAVE")]
    reader = RawMonitor(ioc, [ioc.pv("COUNTER")])
    reading = threading.Event()
    reading.set()

    def keep_reading() -> None:
        deadline = time.monotonic() + FLOOD_SECONDS + 30
        while reading.is_set() and time.monotonic() < deadline:
            reader.read_for(0.2)

    thread = threading.Thread(target=keep_reading, daemon=True)
    thread.start()
    cycles = piled_up = 0
    never_reads: RawMonitor | None = None
    try:
        with caproto_client(ioc) as ctx:
            ca_pv(ctx, ioc.pv("FLOOD")).write([FLOOD_SECONDS], wait=True, timeout=10)
            flood_end = time.monotonic() + FLOOD_SECONDS
            never_reads = RawMonitor(ioc, names)
            while time.monotonic() < flood_end - 1.0 and cycles < MAX_CYCLES:
                stalled = [RawMonitor(ioc, names) for _ in range(3)]
                for client in stalled:  # let the server's updates pile up, unread
                    with contextlib.suppress(AssertionError):
                        poll_until(partial(has_piled_up, client), timeout=0.5, interval=0.01)
                    piled_up += has_piled_up(client)
                for client in stalled:
                    client.reset()
                cycles += 1
                if never_reads is not None and time.monotonic() > flood_end - 2.0:
                    never_reads.reset()
                    never_reads = None
            done = ca_pv(ctx, ioc.pv("DONE"))
            last = poll_until(lambda: done.read().data[0], timeout=FLOOD_SECONDS + 20,
                              message="the flood to end")
            t_done = time.monotonic()
            # The client that kept reading has (or promptly gets) the newest value.
            poll_until(lambda: reader.latest.get(0) == last, timeout=2.0,
                       interval=0.01, message=f"the newest COUNTER value {last}")
            assert reader.t_latest[0] - t_done < 1.0
            # The server still serves, on both protocols, to new clients.
            assert ioc.alive()
            assert ca_pv(ctx, ioc.pv("COUNTER")).read().data[0] == last
        with pva_client(ioc) as pva:
            assert pva.get(ioc.pv("COUNTER"), timeout=5.0) == last
    finally:
        reading.clear()
        thread.join(timeout=5)
        reader.reset()
        if never_reads is not None:
            never_reads.reset()
    assert cycles >= 3, f"only {cycles} connect/disconnect cycles during the flood"
    assert piled_up >= cycles, "the stalled clients' updates never piled up"
    log = ioc.log_text()
    for bad in ("mutated during iteration", "Traceback", "Task exception was never retrieved"):
        assert bad not in log, f"{bad!r} in the IOC log:\n{log[-4000:]}"
