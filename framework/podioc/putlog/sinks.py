"""Where put-log lines go: standard output, a rotated file, a TCP log server.

Each sink's ``write(lines)`` is called from the put log's writer thread only,
with whole lines; it may block (a full pipe, a slow disk) without holding up
the IOC. ``close()`` releases what it holds.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import socket
import sys
import time
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)


class Sink(Protocol):
    """A destination of put-log lines."""

    name: str

    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class StreamSink:
    """Lines to a text stream (standard output by default), flushed per batch."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def write(self, lines: list[str]) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write("".join(f"{text}\n" for text in lines))
        stream.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            (self.stream if self.stream is not None else sys.stdout).flush()


class FileSink:
    """Lines to a file rotated by size (``FILE.1`` .. ``FILE.<backups>``)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.name = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # backupCount 0 would never rotate: keep one old file at least, then drop it
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=max(backups, 1), encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._backups = backups
        self._path = path

    def write(self, lines: list[str]) -> None:
        for text in lines:
            record = logging.makeLogRecord({"msg": text, "levelno": logging.INFO})
            if self._handler.shouldRollover(record):
                self._handler.doRollover()
                if self._backups == 0:
                    Path(f"{self._path}.1").unlink(missing_ok=True)
            self._handler.emit(record)
        if self._handler.stream is not None:
            self._handler.stream.flush()

    def close(self) -> None:
        self._handler.close()


class TcpSink:
    """Lines to a TCP log server (caPutLog's ``host:port`` destination).

    Connects on first use and again after a failure, at most every
    ``retry`` seconds; lines written while the server is unreachable are
    counted as lost (``lost``), never queued without bound.
    """

    def __init__(self, address: str, timeout: float = 2.0, retry: float = 5.0) -> None:
        self.name = f"tcp {address}"
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.timeout = timeout
        self.retry = retry
        self.lost = 0
        self._sock: socket.socket | None = None
        self._next_try = 0.0

    def write(self, lines: list[str]) -> None:
        sock = self._connect()
        if sock is None:
            self.lost += len(lines)
            return
        try:
            sock.sendall("".join(f"{text}\n" for text in lines).encode())
        except OSError as exc:
            self.lost += len(lines)
            log.warning("put log: TCP log server %s:%d: %s; reconnecting", self.host,
                        self.port, exc)
            self.close()

    def _connect(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        now = time.monotonic()
        if now < self._next_try:
            return None
        self._next_try = now + self.retry
        try:
            self._sock = socket.create_connection((self.host, self.port), self.timeout)
        except OSError as exc:
            log.warning("put log: cannot reach the TCP log server %s:%d: %s (retrying every "
                        "%.0f s)", self.host, self.port, exc, self.retry)
            return None
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
