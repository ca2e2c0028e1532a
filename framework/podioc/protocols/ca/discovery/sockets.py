"""UDP search sockets that report each datagram's destination address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from .plans import SearchBinding

log = logging.getLogger(__name__)

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; CPython does not export it
MAX_UDP = 0xFFFF - 16


class SearchSocket:
    """A UDP search socket reporting each datagram's destination address.

    Quacks like caproto's ``_UdpTransportWrapper`` (``sendto``/``close``) so it
    can sit in ``Context.udp_socks``.
    """

    def __init__(self, binding: SearchBinding, sink: Callable[[SearchSocket, bytes,
                                                                  tuple[str, int], str], None],
                 ) -> None:
        self.binding = binding
        self.reply: SearchSocket = self
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        with contextlib.suppress(OSError):  # without it (not Linux): no fan-out, all else works
            self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.sock.setblocking(False)
        self._sink = sink
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self.sock.bind((binding.address, binding.port))
        except OSError:
            self.sock.close()
            raise

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, anc, _flags, src = self.sock.recvmsg(MAX_UDP, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable from an earlier reply
                log.debug("search socket %s: %s", self.binding.address, exc)
                continue
            dest = self.binding.address
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    dest = socket.inet_ntoa(value[8:12])
            if data:
                self._sink(self, data, src, dest)

    async def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.send_now(data, address)

    def send_now(self, data: bytes, address: tuple[str, int]) -> None:
        """Send without waiting; a full buffer drops the datagram (UDP semantics)."""
        try:
            self.reply.sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            log.debug("dropped a reply to %s:%d (send buffer full)", *address)
        except OSError as exc:
            log.debug("reply to %s:%d failed: %s", *address, exc)

    def close(self) -> None:
        if self._loop is not None and self.sock.fileno() != -1:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
