"""The put log the protocols call: one :meth:`PutLog.record` per client put.

``record`` runs on the event loop, in the put's own path, so it does no I/O
and no formatting: it adds the put to an open group (:mod:`.coalesce`) or
hands a finished group to the writer thread (:mod:`.writer`). A timer on the
loop closes groups when their window ends; :meth:`PutLog.close` writes the
open ones at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np

from ..errors import ConfigError
from .coalesce import Coalescer, reason_kind
from .settings import PutLogSettings
from .sinks import FileSink, Sink, StreamSink, TcpSink
from .writer import Writer

log = logging.getLogger(__name__)

#: asyncio may run a timer up to its clock resolution early.
_EARLY = 0.002


class PutLog:
    """Coalesce client puts and write them, one JSON line per group, to ``sinks``."""

    def __init__(self, sinks: list[Sink], coalesce: float = 1.0, capacity: int = 10_000) -> None:
        self.coalescer = Coalescer(coalesce, max_open=capacity)
        self.writer = Writer(sinks, capacity)
        self.puts = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: PutLogSettings) -> PutLog | None:
        """The put log of an instance, or None when it is off or has nowhere to write.

        Raises :class:`ConfigError` when the file cannot be opened."""
        if not settings.enabled:
            return None
        sinks: list[Sink] = [StreamSink()] if settings.stdout else []
        if settings.file is not None:
            try:
                sinks.append(FileSink(settings.file, settings.max_bytes, settings.backups))
            except OSError as exc:
                raise ConfigError(settings.source, "put_log.file",
                                  f"cannot write {settings.file}: {exc.strerror or exc}",
                                  "use a writable path, or remove put_log.file") from None
        if settings.tcp is not None:
            sinks.append(TcpSink(settings.tcp))
        if not sinks:
            log.info("put log: no destination (put_log.stdout is false, no file, no tcp)")
            return None
        return cls(sinks, settings.coalesce, settings.queue)

    def start(self) -> None:
        """Start the writer thread."""
        self.writer.start()
        log.info("put log: to %s; puts to one PV by one client within %g s are one line",
                 ", ".join(sink.name for sink in self.writer.sinks), self.coalescer.window)

    def record(self, protocol: str, pv: str, old: Any, new: Any, host: str, user: str,
               reason: str | None = None) -> None:
        """Log one client put: accepted (``reason`` None) or refused with ``reason``.

        ``old`` is the value before the put, ``new`` the value stored (accepted)
        or asked for (refused). Call on the event loop's thread."""
        if self._closed:
            return
        self.puts += 1
        if isinstance(new, np.generic):
            new = new.item()
        if isinstance(old, np.generic):
            old = old.item()
        now = time.monotonic()
        key = (pv, host, user, protocol, reason is None,
               "" if reason is None else reason_kind(reason))
        done = self.coalescer.add(key, old, new, reason or "", time.time_ns(), now)
        if done is not None:
            self.writer.submit(done)
        if self._timer is None:
            self._schedule(now)

    def _schedule(self, now: float) -> None:
        deadline = self.coalescer.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_later(
                max(0.0, deadline - now), self._flush_due)

    def _flush_due(self) -> None:
        self._timer = None
        now = time.monotonic()
        for group in self.coalescer.due(now + _EARLY):
            self.writer.submit(group)
        self._schedule(now)

    async def close(self) -> None:
        """Write the open groups and everything queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for group in self.coalescer.drain():
            self.writer.submit(group)
        if not await asyncio.get_running_loop().run_in_executor(None, self.writer.stop):
            log.warning("put log: a destination was still blocked at shutdown; "
                        "its last lines may be lost")
