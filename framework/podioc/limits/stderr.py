"""Rate-limited standard error: what C libraries print goes through a filter too.

pvxs (inside p4p) logs straight to file descriptor 2; when descriptors run
out its accept loop logged "Error from accept() call" at ~21 MB/s. After
:func:`capture`, descriptor 2 is a pipe read by a thread: each line is let
through at most ``burst`` times per ``period`` seconds per kind (the line
with its digits masked), and the next one let through says how many were
suppressed. Python's own logging writes to the original stderr directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import IO

#: Digits are masked to group lines that differ only in addresses, counts or times.
_MASK = str.maketrans("0123456789", "##########")


class LineLimiter:
    """At most ``burst`` lines of one kind per ``period`` seconds."""

    def __init__(self, burst: int = 20, period: float = 10.0) -> None:
        self.burst = burst
        self.period = period
        self._windows: dict[str, list[float]] = {}  # kind -> [start, passed, suppressed]

    def admit(self, line: str, now: float | None = None) -> str | None:
        """The line to write (with a suppression note), or None to drop it."""
        now = time.monotonic() if now is None else now
        kind = line.translate(_MASK)[:200]
        window = self._windows.get(kind)
        suppressed = 0
        if window is None or now - window[0] >= self.period:
            suppressed = int(window[2]) if window is not None else 0
            window = [now, 0, 0]
            if len(self._windows) > 1000:  # bounded memory as well
                self._windows.clear()
            self._windows[kind] = window
        window[1] += 1
        if window[1] > self.burst:
            window[2] += 1
            return None
        return f"{line} [{suppressed} similar lines suppressed]" if suppressed else line


def capture(limiter: LineLimiter | None = None) -> IO[str]:
    """Make descriptor 2 a rate-limited pipe; returns the stream of the real stderr
    (also installed as ``sys.stderr`` and in logging's stream handlers)."""
    limiter = limiter or LineLimiter()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.set_inheritable(read_end, False)
    stream = open(real, "w", buffering=1, errors="replace")  # noqa: SIM115 - lives forever
    old = sys.stderr
    with contextlib.suppress(Exception):
        old.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = stream
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(stream)
    threading.Thread(target=_pump, args=(read_end, stream, limiter), daemon=True,
                     name="podioc-stderr").start()
    return stream


def _pump(read_end: int, stream: IO[str], limiter: LineLimiter) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 1 << 16)
        except OSError:
            return
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > 1 << 16:  # a line without end: cut it
            lines.append(pending)
            pending = b""
        out = [kept for raw in lines
               if (kept := limiter.admit(raw.decode("utf-8", "replace"))) is not None]
        if out:
            with contextlib.suppress(Exception):
                stream.write("\n".join(out) + "\n")
