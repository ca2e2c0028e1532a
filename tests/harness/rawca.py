"""A Channel Access client at the message level, for sequences real clients make
but cannot be told to make on demand (several requests in one TCP write).

Messages are built with caproto's command classes and read back as plain
header fields, so the test sees exactly what the server sent, in order.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import caproto as ca

HEADER = struct.Struct(">HHHHII")
EXTENDED = struct.Struct(">II")
DBR_DOUBLE = 6
DBE_VALUE_ALARM = 1 | 4


@dataclass(frozen=True)
class Message:
    """One message from the server: header fields and payload."""

    command: int
    data_type: int
    data_count: int
    p1: int
    p2: int
    payload: bytes
    seq: int = 0  # arrival order on its connection

    def double(self) -> float:
        """The first DBR_DOUBLE value of a plain (DBR_DOUBLE) payload."""
        return float(struct.unpack_from(">d", self.payload)[0])


class WireClient:
    """One CA circuit to ``127.0.0.1:port``; ``send`` writes messages in one write."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self.inbox: list[Message] = []
        self.received = 0
        self._ids = 100
        self.send(ca.VersionRequest(0, 13), ca.HostNameRequest("wire"),
                  ca.ClientNameRequest("wire"))

    def new_id(self) -> int:
        """A fresh cid, ioid or subscription id."""
        self._ids += 1
        return self._ids

    def send(self, *commands: Any) -> None:
        self.sock.sendall(b"".join(bytes(c) for c in commands))

    def _read(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data
        offset = 0
        buf = self._buffer
        while offset + 16 <= len(buf):
            cmd, size, dtype, count, p1, p2 = HEADER.unpack_from(buf, offset)
            head = 16
            if size == 0xFFFF and count == 0:
                if offset + 24 > len(buf):
                    break
                size, count = EXTENDED.unpack_from(buf, offset + 16)
                head = 24
            if offset + head + size > len(buf):
                break
            self.received += 1
            self.inbox.append(Message(cmd, dtype, count, p1, p2,
                                      buf[offset + head:offset + head + size], self.received))
            offset += head + size
        self._buffer = buf[offset:]

    def wait_for(self, predicate: Callable[[Message], bool], what: str,
                 timeout: float | None = None) -> Message:
        """Remove and return the first message matching ``predicate`` (deadline)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, message in enumerate(self.inbox):
                if predicate(message):
                    return self.inbox.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout or self.timeout} s; "
                                     f"unmatched: {self.inbox[-5:]!r}")
            self._read(remaining)

    def take(self, predicate: Callable[[Message], bool]) -> list[Message]:
        """Remove and return every message already received that matches."""
        matched = [m for m in self.inbox if predicate(m)]
        self.inbox = [m for m in self.inbox if not predicate(m)]
        return matched

    def connect(self, name: str) -> tuple[int, int, int]:
        """Create a channel: (cid, sid, native count)."""
        cid = self.new_id()
        self.send(ca.CreateChanRequest(name, cid, 13))
        reply = self.wait_for(lambda m: m.command == ca.CreateChanResponse.ID and m.p1 == cid,
                              f"channel {name}")
        return cid, reply.p2, reply.data_count

    def event_add(self, sid: int, subid: int, count: int = 1) -> Any:
        return ca.EventAddRequest(DBR_DOUBLE, count, sid, subid, 0.0, 0.0, 0.0,
                                  DBE_VALUE_ALARM)

    @staticmethod
    def event_cancel(sid: int, subid: int) -> Any:
        return ca.EventCancelRequest(DBR_DOUBLE, sid, subid)

    def put(self, sid: int, value: float) -> None:
        """WRITE_NOTIFY a double and wait for its (successful) completion."""
        ioid = self.new_id()
        self.send(ca.WriteNotifyRequest([value], DBR_DOUBLE, 1, sid, ioid))
        reply = self.wait_for(lambda m: m.command == ca.WriteNotifyResponse.ID and m.p2 == ioid,
                              f"completion of the put of {value}")
        assert reply.p1 == 1, f"put of {value} failed with status {reply.p1}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_update(subid: int) -> Callable[[Message], bool]:
    """Matches a monitor update (an EVENT_ADD reply with data) of ``subid``."""
    return lambda m: m.command == ca.EventAddResponse.ID and m.p2 == subid and bool(m.payload)


def is_cancel_reply(subid: int) -> Callable[[Message], bool]:
    """Matches the reply to EVENT_CANCEL of ``subid`` (an empty EVENT_ADD message)."""
    return lambda m: m.command == ca.EventAddResponse.ID and m.p2 == subid and not m.payload
