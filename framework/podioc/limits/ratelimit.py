"""Bounded logging: a hostile client must not be able to flood the IOC's log.

Every connection, refused put and protocol error of a client is worth a log
line, but a client can cause thousands per second. :class:`RateLimitFilter`
lets each kind of message (logger + message template) through ``burst`` times
per ``period`` seconds; the rest are counted, and the next one let through
says how many were suppressed. Tracebacks are kept for the first few only.
"""

from __future__ import annotations

import logging
import threading
import time

#: Loggers whose messages clients can trigger at will.
CLIENT_DRIVEN = ("caproto.ctx", "caproto.circ", "podioc.protocols.ca.circuit",
                 "podioc.protocols.ca.context", "podioc.protocols.ca.access",
                 "podioc.protocols.ca.puts", "podioc.protocols.pva.access",
                 "podioc.protocols.pva.connections", "podioc.limits.budget", "podioc.tasks",
                 "podioc.limits.stderr", "podioc.limits.fds", "podioc.runtime.health",
                 "podioc.putlog.writer", "podioc.putlog.sinks", "asyncio")


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records per (logger, template) per ``period`` s."""

    def __init__(self, burst: int = 20, period: float = 10.0, tracebacks: int = 3) -> None:
        super().__init__()
        self.burst = burst
        self.period = period
        self.tracebacks = tracebacks
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float | int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(getattr(record, "ratekey", record.msg)))
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self.period:
                suppressed = int(window[2]) if window is not None else 0
                window = [now, 0, 0]
                self._windows[key] = window
                if len(self._windows) > 1000:  # bounded memory as well
                    self._windows = {key: window}
            else:
                suppressed = 0
            window[1] += 1
            if window[1] > self.burst:
                window[2] += 1
                return False
            total = sum(int(w[1]) for k, w in self._windows.items() if k[0] == record.name)
        if total > self.tracebacks and record.exc_info and record.levelno < logging.CRITICAL:
            record.exc_info = None  # the first few keep their traceback
            record.exc_text = None
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar messages suppressed]"
        return True


_installed = RateLimitFilter()


def install(names: tuple[str, ...] = CLIENT_DRIVEN) -> RateLimitFilter:
    """Attach the shared filter to the loggers clients can drive (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _installed not in logger.filters:
            logger.addFilter(_installed)
    return _installed
