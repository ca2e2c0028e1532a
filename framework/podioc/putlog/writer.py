"""The writer thread: formats queued lines and writes them to every sink.

The event loop only appends to a bounded queue and wakes the thread
(:meth:`Writer.submit`: no I/O, never waits): a sink that blocks (a full
pipe, a slow disk, an unreachable log server) holds up this thread, never a
put. After waking, the thread lets a burst gather for :data:`GATHER` s.
When the queue is full, lines are dropped and counted; the writer then
writes a line saying how many (at most once per :data:`DROP_REPORT_PERIOD`)
and logs a warning.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from .coalesce import Group
from .lines import dropped_line, line
from .sinks import Sink

log = logging.getLogger(__name__)

#: Lines written per sink call, at most.
BATCH = 512
#: Dropped lines are reported at most this often (s).
DROP_REPORT_PERIOD = 1.0
#: After waking, the thread waits this long for more lines (s): at a put per line
#: (``coalesce: 0``) it wakes ~100 times a second, not once per put.
GATHER = 0.01


class Writer:
    """A daemon thread writing :class:`Group` lines to ``sinks``; ``capacity`` lines wait."""

    def __init__(self, sinks: list[Sink], capacity: int) -> None:
        self.sinks = sinks
        self.capacity = capacity
        self.dropped = 0  # incremented by the loop thread only
        self.written = 0  # lines handed to the sinks
        self._reported = 0
        self._last_report = 0.0
        self._queue: collections.deque[Group] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="podioc-putlog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, group: Group) -> None:
        """Queue one line (from the event loop); drop and count it if the queue is full."""
        if len(self._queue) >= self.capacity:
            self.dropped += 1
        else:
            self._queue.append(group)
        if not self._wake.is_set():
            self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Write what is queued, close the sinks; False if a sink was still blocked
        after ``timeout`` seconds (the thread is a daemon: it cannot hold up exit)."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        done = not self._thread.is_alive()
        if done:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception:
                    log.exception("put log: closing %s failed", sink.name)
        return done

    def _run(self) -> None:
        queue = self._queue
        while True:
            self._wake.wait()
            self._stop.wait(GATHER)  # let a burst gather (cut short at stop)
            self._wake.clear()  # anything appended from here on sets it again
            while queue:
                batch: list[str] = []
                while queue and len(batch) < BATCH:
                    group = queue.popleft()
                    try:
                        batch.append(line(group))
                    except Exception:  # a value that cannot be shown: never end the thread
                        log.exception("put log: cannot write the line of a put to %s",
                                      group.pv)
                self._report_drops(batch, force=not queue)  # a burst's end: say it now
                self._emit(batch)
            if self._stopping:
                final: list[str] = []
                self._report_drops(final, force=True)
                self._emit(final)
                return

    def _report_drops(self, batch: list[str], force: bool) -> None:
        new = self.dropped - self._reported
        now = time.monotonic()
        if new <= 0 or (not force and now - self._last_report < DROP_REPORT_PERIOD):
            return
        self._reported += new
        self._last_report = now
        batch.append(dropped_line(new, time.time_ns()))
        log.warning("put log: %d lines dropped (more than %d waiting to be written); "
                    "%d dropped in all", new, self.capacity, self._reported)

    def _emit(self, batch: list[str]) -> None:
        if not batch:
            return
        self.written += len(batch)
        for sink in self.sinks:
            try:
                sink.write(batch)
            except Exception as exc:
                log.warning("put log: writing to %s failed: %s", sink.name, exc)
