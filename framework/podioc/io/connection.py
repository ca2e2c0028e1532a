"""The connection state every device client shares: connect, lose, reconnect.

A :class:`Connection` owns one background task (started by :meth:`start`)
that opens the link, waits until it is lost, and opens it again after a
delay from :class:`Backoff`. IOC code watches the state through
``connected``, :meth:`wait_connected` and the ``on_connect`` /
``on_disconnect`` callbacks (see :mod:`podioc.io.binding` for PVs that
follow it). Subclasses only say how to open and close the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from ..errors import DeviceError, DeviceNotConnected

log = logging.getLogger("podioc.io")

ConnectCallback = Callable[[], Awaitable[None] | None]
DisconnectCallback = Callable[[str], Awaitable[None] | None]


@dataclass(frozen=True)
class Backoff:
    """Delays between connection attempts: ``initial``, times ``factor``, capped at ``maximum``.

    Defaults: 0.25 s, 0.5 s, 1 s, 2 s, 4 s, then every 5 s while the device
    stays away. The sequence starts again once a connection has stayed up
    for ``maximum`` seconds, so a device that accepts and at once drops
    connections is retried at the capped rate, not in a tight loop.
    """

    initial: float = 0.25
    factor: float = 2.0
    maximum: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1:
            raise ValueError(f"{self}: need 0 < initial <= maximum and factor >= 1")

    def delays(self) -> Iterator[float]:
        """The delays before each successive attempt (endless)."""
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


def describe(exc: BaseException) -> str:
    """A short reason for a failed connection attempt, e.g. ``connection refused``."""
    if isinstance(exc, DeviceError):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "no answer (connect timed out)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    return str(exc) or type(exc).__name__


class Connection:
    """Connection state with reconnection; subclasses implement :meth:`_open` and :meth:`_close`.

    ``name`` appears in every log line and error message (e.g. ``"psu"``);
    ``address`` describes where the device is (``"10.0.0.5:5025"``).
    """

    def __init__(self, name: str, address: str, *, backoff: Backoff | None = None,
                 connect_timeout: float = 3.0) -> None:
        self.name = name
        self.address = address
        self.backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self._connected = False
        self._reason = "not started"
        self._up = asyncio.Event()
        self._lost = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._on_connect: list[ConnectCallback] = []
        self._on_disconnect: list[DisconnectCallback] = []
        #: number of successful connections so far (a reconnect makes it 2, ...)
        self.connections = 0

    # -- state ---------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the link is open (and, where configured, the probe was answered)."""
        return self._connected

    @property
    def reason(self) -> str:
        """Why the device is not connected (``""`` while it is)."""
        return "" if self._connected else self._reason

    def not_connected(self, doing: str = "") -> DeviceNotConnected:
        """The error for an operation attempted while disconnected."""
        what = f" ({doing})" if doing else ""
        return DeviceNotConnected(f"{self}: device not connected{what}: {self._reason}")

    def on_connect(self, fn: ConnectCallback) -> ConnectCallback:
        """Call (and await, if async) ``fn()`` after every successful (re)connection."""
        self._on_connect.append(fn)
        return fn

    def on_disconnect(self, fn: DisconnectCallback) -> DisconnectCallback:
        """Call (and await, if async) ``fn(reason)`` each time the connection is lost."""
        self._on_disconnect.append(fn)
        return fn

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once connected; raise :class:`DeviceNotConnected` after ``timeout`` s."""
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            raise self.not_connected(f"waited {timeout} s") from None

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        """Start connecting in the background and return at once (call it in ``@startup``)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._reason = "connecting"
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"connection {self.name}")

    async def close(self) -> None:
        """Close the link and stop reconnecting (call it in ``@shutdown``)."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close()
        if self._connected:
            await self._set_disconnected("closed")
        self._reason = "closed"

    def drop(self, reason: str) -> None:
        """Close the link now and reconnect with backoff (e.g. after garbage replies)."""
        if self._connected:
            self._lost_link(reason)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __str__(self) -> str:
        return self.name if self.name == self.address else f"{self.name} ({self.address})"

    # -- for subclasses --------------------------------------------------------
    async def _open(self) -> None:
        """Open the link; raise ``OSError`` or :class:`DeviceError` when that fails."""
        raise NotImplementedError

    def _close(self) -> None:
        """Close the link (idempotent, never raises)."""

    def _lost_link(self, reason: str) -> None:
        """Subclasses call this when the link breaks; wakes the supervisor."""
        self._connected = False
        self._reason = reason
        self._up.clear()
        self._close()
        self._lost.set()

    # -- the background task -------------------------------------------------
    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delays = self.backoff.delays()
        failures = 0
        while not self._stopping:
            self._lost.clear()
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._open()
                if self._lost.is_set():  # lost again while opening (e.g. during the probe)
                    raise DeviceNotConnected(self._reason)
            except (OSError, DeviceError) as exc:
                self._close()
                self._reason = describe(exc).removeprefix(f"{self}: ")
                delay = next(delays)
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "%s: cannot connect: %s; retrying in %.2g s%s", self,
                        self._reason, delay, "" if failures > 1 else " (and with backoff "
                        f"up to every {self.backoff.maximum:g} s)")
                await asyncio.sleep(delay)
                continue
            failures = 0
            since = loop.time()
            self.connections += 1
            self._connected = True
            self._up.set()
            log.info("%s: connected", self)
            await self._run_callbacks(self._on_connect)
            await self._lost.wait()
            await self._set_disconnected(self._reason)
            if loop.time() - since >= self.backoff.maximum:
                delays = self.backoff.delays()
            if not self._stopping:
                await asyncio.sleep(next(delays))

    async def _set_disconnected(self, reason: str) -> None:
        self._connected = False
        self._up.clear()
        log.log(logging.INFO if self._stopping else logging.WARNING, "%s: disconnected: %s",
                self, reason)
        await self._run_callbacks(self._on_disconnect, reason)

    async def _run_callbacks(self, callbacks: list[Any], *args: Any) -> None:
        for fn in list(callbacks):
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except DeviceError as exc:
                log.warning("%s: %s failed: %s", self, getattr(fn, "__name__", fn), exc)
                self.drop(f"{getattr(fn, '__name__', 'callback')} failed: {exc}")
            except Exception:
                log.exception("%s: callback %s failed", self, getattr(fn, "__name__", fn))
