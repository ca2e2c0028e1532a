"""Open-file descriptors: raise the limit, size the client caps to fit, keep a reserve.

Each client connection costs one descriptor. With the common soft limit of
1024 and a cap of 1000 per protocol, clients could take every descriptor:
accepts then fail in a loop and autosave cannot open its file. So at
start-up the soft limit is raised to the hard limit, and each protocol's
cap is lowered, if needed, to its share of what is left after the
descriptors already open and ``PODIOC_FD_RESERVE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

try:
    import resource
except ImportError:  # pragma: no cover - not on Linux
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: errno values meaning "out of descriptors".
EXHAUSTED = (errno.EMFILE, errno.ENFILE)


def open_fds() -> int:
    """Descriptors this process has open now."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir used
    except OSError:
        return 0


def raise_nofile() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; (soft, hard) afterwards."""
    if resource is None:
        return (1 << 20, 1 << 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft, hard


@dataclass(frozen=True)
class FdPlan:
    """How the descriptor limit is shared out."""

    soft: int
    hard: int
    in_use: int
    reserve: int
    per_protocol: int  # the client cap of each protocol

    def describe(self, max_clients: int, protocols: int) -> str:
        """The start-up log line."""
        lowered = (f", lowered from PODIOC_MAX_CLIENTS={max_clients} to fit"
                   if self.per_protocol < max_clients else "")
        return (f"open files: limit {self.soft} (hard {self.hard}), {self.in_use} in use, "
                f"{self.reserve} reserved (PODIOC_FD_RESERVE); client cap per protocol "
                f"{self.per_protocol} x {protocols}{lowered}")


def plan(max_clients: int, reserve: int, protocols: int, soft: int, hard: int,
         in_use: int) -> FdPlan:
    """Each protocol's cap: ``max_clients``, or its share of the free descriptors."""
    free = soft - in_use - reserve
    share = max(1, free // max(protocols, 1))
    return FdPlan(soft, hard, in_use, reserve, min(max_clients, share))


class FdReserve:
    """A few descriptors held open (on /dev/null) and given back when one is needed.

    :meth:`run` calls a function; if it fails for lack of descriptors, the
    held ones are closed, the function is called again, and they are reopened.
    """

    def __init__(self, count: int = 4) -> None:
        self.count = count
        self._held: list[int] = []
        self.fill()

    def fill(self) -> None:
        while len(self._held) < self.count:
            try:
                self._held.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                return

    def release(self) -> None:
        for fd in self._held:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        self.release()
        try:
            yield
        finally:
            self.fill()

    def run(self, func: Callable[[], T]) -> T:
        """``func()``, retried once with the reserve released if descriptors ran out."""
        try:
            return func()
        except OSError as exc:
            if exc.errno not in EXHAUSTED:
                raise
        with self.released():
            return func()


def quiet_accept_exhaustion(loop: asyncio.AbstractEventLoop) -> None:
    """Log asyncio's "accept() out of system resource" as one rate-limited line.

    When descriptors run out, asyncio stops accepting on that listening socket
    for a second and reports it once per pending connection, each with a
    traceback: thousands of lines during a burst. The pause itself is right;
    the report becomes a warning naming the cause, without a traceback.
    """
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in EXHAUSTED:
            sock = context.get("socket")
            where = getattr(sock, "getsockname", lambda: "?")()
            log.warning("out of file descriptors: accepting on %s paused for 1 s "
                        "(%s); raise the open-file limit or lower PODIOC_MAX_CLIENTS",
                        where, exc.strerror)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
