"""Request/reply over UDP: one datagram per request, a timeout per try, retries.

UDP has no connection to lose, so the state means "the device answers":
a request that gets no reply after ``1 + retries`` tries, or an ICMP "port
unreachable" (connection refused), marks the device disconnected; the
socket is then reopened with backoff. With a ``probe`` the connection only
counts as connected once the probe is answered, so clients see COMM alarms
until the device is really back; without one, it counts as connected as
soon as the socket is reopened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..errors import DeviceNotConnected, DeviceTimeout
from .connection import Backoff
from .requests import RequestConnection

log = logging.getLogger("podioc.io")


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpConnection) -> None:
        self.owner = owner
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is self.owner._transport:
            self.owner._received(data)

    def error_received(self, exc: Exception) -> None:
        if self.transport is self.owner._transport:
            self.owner._error(exc)


class UdpConnection(RequestConnection):
    """Request/reply with a device over UDP.

    ``timeout``: seconds to wait for a reply per try; ``retries``: tries
    after the first. ``terminator`` is appended to each request and removed
    from the end of each reply. ``match(request, reply)`` pairs replies with
    requests (e.g. by a request id); replies it rejects are dropped.
    ``unsolicited`` gets datagrams that answer no request.
    """

    def __init__(self, host: str, port: int, *, name: str | None = None, timeout: float = 1.0,
                 retries: int = 2, encoding: str = "ascii", terminator: str | bytes = b"",
                 probe: str | bytes | None = None,
                 match: Callable[[bytes, bytes], bool] | None = None,
                 unsolicited: Callable[[bytes], None] | None = None,
                 local_addr: tuple[str, int] | None = None, backoff: Backoff | None = None,
                 connect_timeout: float = 3.0) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"UdpConnection: port {port} is not a UDP port (1..65535)")
        if timeout <= 0 or retries < 0:
            raise ValueError(f"UdpConnection: need timeout > 0 and retries >= 0 "
                             f"(got {timeout}, {retries})")
        super().__init__(name or f"udp {host}:{port}", f"udp {host}:{port}", backoff=backoff,
                         connect_timeout=connect_timeout)
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.encoding = encoding
        self.terminator = terminator.encode(encoding) if isinstance(terminator, str) \
            else terminator
        self.probe = probe
        self.match = match
        self.unsolicited = unsolicited
        self.local_addr = local_addr
        #: datagrams that answered no waiting request (dropped or given to ``unsolicited``)
        self.unmatched = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._lock = asyncio.Lock()
        self._pending: tuple[asyncio.Future[bytes], bytes] | None = None

    async def request_bytes(self, data: bytes, *, timeout: float | None = None) -> bytes:
        if not self.connected:
            raise self.not_connected(f"request {data!r} not sent")
        return await self._exchange(data, timeout)

    # -- internals -------------------------------------------------------------
    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(self), remote_addr=(self.host, self.port),
            local_addr=self.local_addr)
        self._transport = transport
        if self.probe is not None:
            await self._exchange(self.encode(self.probe), None)

    def _close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        self._fail(self.not_connected("socket closed"))

    def _fail(self, exc: Exception) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending[0].done():
            pending[0].set_exception(exc)

    async def _exchange(self, data: bytes, timeout: float | None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        tries = 1 + self.retries
        async with self._lock:
            for attempt in range(1, tries + 1):
                transport = self._transport
                if transport is None:
                    raise self.not_connected(f"request {data!r} not sent")
                future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                self._pending = (future, data)
                transport.sendto(data + self.terminator)
                try:
                    async with asyncio.timeout(limit):
                        return await future
                except TimeoutError as exc:
                    if isinstance(exc, DeviceTimeout):
                        raise
                    log.debug("%s: no reply to %r (try %d of %d)", self, data, attempt, tries)
                finally:
                    if self._pending is not None and self._pending[0] is future:
                        self._pending = None
        message = f"no reply to {data!r} after {tries} tries of {limit:g} s"
        self.drop(message)
        raise DeviceTimeout(f"{self}: {message}")

    def _received(self, data: bytes) -> None:
        if self.terminator and data.endswith(self.terminator):
            data = data[:-len(self.terminator)]
        pending = self._pending
        if pending is not None and not pending[0].done() and (
                self.match is None or self.match(pending[1], data)):
            self._pending = None
            pending[0].set_result(data)
            return
        self.unmatched += 1
        if self.unsolicited is not None:
            try:
                self.unsolicited(data)
            except Exception:
                log.exception("%s: unsolicited-datagram handler failed", self)
        else:
            log.debug("%s: dropped a datagram that answers no request: %r", self, data[:80])

    def _error(self, exc: Exception) -> None:
        reason = ("connection refused (nothing listens on the port)"
                  if isinstance(exc, ConnectionRefusedError) else str(exc))
        self._fail(DeviceNotConnected(f"{self}: {reason}"))
        self.drop(reason)
