"""Request/reply over a byte stream (TCP, serial line): framing, one request at a time.

Replies are cut out of the stream by a :class:`~podioc.io.framing.Framing`
as the bytes arrive. A lock keeps one request in flight; the next frame
answers it. A frame that arrives with no request waiting is either the late
reply of a request that timed out (dropped, counted in ``late_replies``) or
an unsolicited message (given to ``unsolicited``; ``is_unsolicited`` picks
such messages out even while a request waits).

Faults: a lost link fails the waiting request at once with
:class:`~podioc.errors.DeviceNotConnected`; garbage without a frame boundary
fails it with :class:`~podioc.errors.DeviceProtocolError` and reconnects;
``max_timeouts`` requests in a row without a reply also reconnect (the
device is treated as gone, which also brings the stream back in step).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from ..errors import DeviceNotConnected, DeviceProtocolError, DeviceTimeout
from ..util.tasks import watch
from .connection import Backoff, describe
from .framing import Framing, framing_of
from .requests import RequestConnection

log = logging.getLogger("podioc.io")

Unsolicited = Callable[[str], Awaitable[None] | None]


class _LinkProtocol(asyncio.Protocol):
    """Feeds one transport's bytes and its end to the connection that opened it."""

    def __init__(self, owner: StreamConnection) -> None:
        self.owner = owner
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.transport is self.owner._transport:
            self.owner._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and self.transport is self.owner._transport:
            self.owner._link_ended("closed by the device" if exc is None else describe(exc))


class StreamConnection(RequestConnection):
    """Requests and replies over a stream; subclasses open the transport.

    ``framing``: a terminator (``"\\n"``, ``"\\r\\n"``, ``b"\\x03"``) or a
    :class:`~podioc.io.framing.Framing`. ``timeout``: seconds a request waits
    for its reply (including the wait for an earlier request to finish).
    ``probe``: a command sent after each connect that must be answered before
    the connection counts as connected (e.g. ``"*IDN?"``: a terminal server
    accepts TCP even when the device behind it is off). ``max_timeouts``:
    requests in a row without a reply before the link is dropped and
    reopened. ``unsolicited``: called with each message the device sends on
    its own. ``is_unsolicited``: recognises such messages while a request
    waits for its reply.
    """

    def __init__(self, name: str, address: str, *, framing: Framing | str | bytes = "\n",
                 timeout: float = 2.0, encoding: str = "ascii", probe: str | None = None,
                 max_timeouts: int = 2, unsolicited: Unsolicited | None = None,
                 is_unsolicited: Callable[[str], bool] | None = None,
                 backoff: Backoff | None = None, connect_timeout: float = 3.0) -> None:
        super().__init__(name, address, backoff=backoff, connect_timeout=connect_timeout)
        if timeout <= 0 or max_timeouts < 1:
            raise ValueError(f"{name}: need timeout > 0 and max_timeouts >= 1")
        self.framing = framing_of(framing)
        self.timeout = timeout
        self.encoding = encoding
        self.probe = probe
        self.max_timeouts = max_timeouts
        self.unsolicited = unsolicited
        self.is_unsolicited = is_unsolicited
        #: replies that arrived after their request had timed out (and were dropped)
        self.late_replies = 0
        #: the device's answer to ``probe`` at the last connect ("" without a probe)
        self.identity = ""
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._lock = asyncio.Lock()
        self._pending: tuple[asyncio.Future[bytes], bytes] | None = None
        self._stale = 0
        self._timeouts = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the public API --------------------------------------------------------
    async def request_bytes(self, data: bytes, *, timeout: float | None = None) -> bytes:
        if not self.connected:
            raise self.not_connected(f"request {data!r} not sent")
        return await self._exchange(data, timeout, reply=True)

    async def send(self, command: str | bytes, *, timeout: float | None = None) -> None:
        """Send a command that has no reply (after any request in flight)."""
        data = self.encode(command)
        if not self.connected:
            raise self.not_connected(f"{data!r} not sent")
        await self._exchange(data, timeout, reply=False)

    # -- for subclasses --------------------------------------------------------
    async def _open_transport(self, protocol: Callable[[], asyncio.Protocol]
                              ) -> asyncio.WriteTransport:
        """Open the stream with ``protocol`` as its protocol factory."""
        raise NotImplementedError

    # -- internals -------------------------------------------------------------
    async def _open(self) -> None:
        self._buffer.clear()
        self._stale = self._timeouts = 0
        self._transport = await self._open_transport(lambda: _LinkProtocol(self))
        if self.probe is not None:
            reply = await self._exchange(self.encode(self.probe), None, reply=True)
            self.identity = self.decode(reply)
            log.info("%s: %s -> %r", self, self.probe, self.identity)

    def _close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        self._fail_pending(self.not_connected("link closed"))

    def _link_ended(self, reason: str) -> None:
        if self._pending is not None:
            command = self._pending[1]
            self._fail_pending(DeviceNotConnected(
                f"{self}: connection lost while waiting for the reply to {command!r}: {reason}"))
        self._lost_link(reason)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending[0].done():
            pending[0].set_exception(exc)

    async def _exchange(self, data: bytes, timeout: float | None, *, reply: bool) -> bytes:
        limit = self.timeout if timeout is None else timeout
        sent = False
        try:
            async with asyncio.timeout(limit), self._lock:
                transport = self._transport
                if transport is None or transport.is_closing():
                    raise self.not_connected(f"request {data!r} not sent")
                if not reply:
                    transport.write(self.framing.encode(data))
                    return b""
                future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                self._pending = (future, data)
                transport.write(self.framing.encode(data))
                sent = True
                try:
                    answer: bytes = await future
                finally:
                    if self._pending is not None and self._pending[0] is future:
                        self._pending = None
        except TimeoutError as exc:
            if isinstance(exc, DeviceTimeout):
                raise
            raise self._timed_out(data, limit, sent) from None
        self._timeouts = 0
        return answer

    def _timed_out(self, data: bytes, limit: float, sent: bool) -> DeviceTimeout:
        if not sent:
            return DeviceTimeout(f"{self}: {data!r} not sent within {limit:g} s: earlier "
                                 "requests are still waiting for their replies")
        self._stale += 1
        self._timeouts += 1
        if self._timeouts >= self.max_timeouts and self.connected:
            self.drop(f"no reply to {self._timeouts} requests in a row "
                      f"(timeout {limit:g} s); reconnecting")
        return DeviceTimeout(f"{self}: no reply to {data!r} within {limit:g} s")

    def _received(self, data: bytes) -> None:
        self._buffer += data
        try:
            frames = self.framing.split(self._buffer)
        except DeviceProtocolError as exc:
            self._buffer.clear()
            self._fail_pending(DeviceProtocolError(f"{self}: {exc}"))
            self._lost_link(str(exc))
            return
        for frame in frames:
            self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        pending = self._pending
        if self.is_unsolicited is not None and self.is_unsolicited(self.decode(frame)):
            self._deliver(frame)
        elif pending is not None and not pending[0].done():
            self._pending = None
            pending[0].set_result(frame)
        elif self._stale:
            self._stale -= 1
            self.late_replies += 1
            log.debug("%s: dropped a late reply %r", self, frame[:80])
        else:
            self._deliver(frame)

    def _deliver(self, frame: bytes) -> None:
        if self.unsolicited is None:
            log.debug("%s: dropped an unexpected message %r", self, frame[:80])
            return
        try:
            result = self.unsolicited(self.decode(frame))
        except Exception:
            log.exception("%s: unsolicited-message handler failed", self)
            return
        if inspect.isawaitable(result):
            task: asyncio.Task[None] = asyncio.ensure_future(result)
            self._tasks.add(watch(task, f"{self.name} unsolicited-message handler"))
            task.add_done_callback(self._tasks.discard)
