"""Unicast search fan-out: re-broadcast on the node's loopback, relay the answers.

Several servers on one node share the UDP search port; the kernel hands a
*unicast* search (a client whose address list names the node) to only one of
them. The podioc server that gets one re-broadcasts its searches on the
node's loopback (127.255.255.255, same port) from this private relay socket,
with fresh search ids, and relays every answer back to the client from the
search port, naming the address the client used and the answering server's
TCP port. Every CA server on the node answers, podioc or not (rsrv, caproto).
Each relayed answer is matched to its client by the relay's search id and
expires after :data:`RELAY_TTL` seconds."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from dataclasses import dataclass, field

from ..wire import CMD_SEARCH, CMD_VERSION, DONT_REPLY, MINOR_VERSION, Message, decode
from .interfaces import LOOPBACK_BROADCAST
from .sockets import MAX_UDP, SearchSocket

log = logging.getLogger(__name__)

ANY_ADDRESS = 0xFFFFFFFF  # "use the address the datagram came from"
RELAY_TTL = 3.0
RELAY_MAX = 8192


def _ip_int(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


@dataclass
class _Pending:
    client: tuple[str, int]
    cid: int
    target: str  # the address the client sent its search to
    via: SearchSocket
    expires: float
    sequence: tuple[int, int]  # (flag, number) of the client's version header, echoed


@dataclass
class Relay:
    """Re-broadcasts unicast searches on the node's loopback and relays the answers."""

    port: int  # the CA search port shared by the node's servers
    sock: socket.socket = field(init=False)
    address: tuple[str, int] = field(init=False)
    pending: collections.OrderedDict[int, _Pending] = field(
        default_factory=collections.OrderedDict)
    forwarded: int = 0
    relayed: int = 0
    _next_id: int = 1
    _loop: asyncio.AbstractEventLoop | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.setblocking(False)
        try:
            self.sock.bind(("127.0.0.1", 0))
        except OSError:
            self.sock.close()
            raise
        self.address = self.sock.getsockname()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def _new_id(self) -> int:
        rid = self._next_id
        self._next_id = self._next_id % 0xFFFFFFF0 + 1
        return rid

    def _expire(self, now: float) -> None:
        while self.pending:
            first = next(iter(self.pending.values()))
            if first.expires > now and len(self.pending) <= RELAY_MAX:
                break
            self.pending.popitem(last=False)

    def forward(self, data: bytes, client: tuple[str, int], target: str,
                via: SearchSocket) -> None:
        """Re-broadcast the searches of one datagram on the loopback."""
        now = time.monotonic()
        self._expire(now)
        out = [Message(CMD_VERSION, 0, MINOR_VERSION, 0, 0)]
        sequence = (0, 0)
        for msg in decode(data):
            if msg.command == CMD_VERSION:
                sequence = (msg.data_type, msg.p1)
            if msg.command != CMD_SEARCH:
                continue
            rid = self._new_id()
            self.pending[rid] = _Pending(client, msg.p1, target, via, now + RELAY_TTL,
                                         sequence)
            out.append(Message(CMD_SEARCH, DONT_REPLY, MINOR_VERSION, rid, rid, msg.payload))
        if len(out) == 1:
            return
        try:
            self.sock.sendto(b"".join(m.encode() for m in out), (LOOPBACK_BROADCAST, self.port))
            self.forwarded += 1
        except OSError as exc:
            log.debug("search fan-out failed: %s", exc)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, src = self.sock.recvfrom(MAX_UDP)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("relay socket: %s", exc)
                continue
            self.relay(data, src)

    def relay(self, data: bytes, src: tuple[str, int]) -> None:
        """Send each answer in ``data`` on to the client that asked."""
        now = time.monotonic()
        grouped: dict[tuple[tuple[str, int], int], tuple[_Pending, list[Message]]] = {}
        for msg in decode(data):
            if msg.command != CMD_SEARCH:
                continue  # NOT_FOUND is never relayed; the version header is rebuilt
            entry = self.pending.get(msg.p2)
            if entry is None or entry.expires < now:
                continue
            server_ip = msg.p1
            if server_ip == ANY_ADDRESS or ipaddress.IPv4Address(server_ip).is_loopback:
                # The answer came over the loopback: name the address the client used.
                server_ip = _ip_int(entry.target)
            answer = Message(CMD_SEARCH, msg.data_type, 0, server_ip, entry.cid,
                             msg.payload or struct.pack(">H6x", MINOR_VERSION))
            key = (entry.client, id(entry.via))
            grouped.setdefault(key, (entry, []))[1].append(answer)
        for (client, _), (entry, answers) in grouped.items():
            header = Message(CMD_VERSION, entry.sequence[0], MINOR_VERSION,
                             entry.sequence[1], 0)
            entry.via.send_now(b"".join(m.encode() for m in [header, *answers]), client)
            self.relayed += len(answers)
            log.debug("relayed %d search answer(s) from %s:%d to %s:%d", len(answers),
                      *src, *client)
