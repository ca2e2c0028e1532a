"""The GVSP stream socket (on a free port) and the thread that receives it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from .gvsp import FrameAssembler

#: Receive buffer asked for; without CAP_NET_ADMIN the kernel caps it at
#: net.core.rmem_max (raise that sysctl on the node for large frames).
RCVBUF = 16 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class StreamReceiver:
    """A UDP socket bound to a free port, read by a daemon thread into an assembler.

    With ``source`` set, datagrams from other addresses are counted as ignored
    and not assembled.
    """

    def __init__(self, assembler: FrameAssembler, *, bind: str = "",
                 source: str | None = None) -> None:
        self.assembler = assembler
        self.source = source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:      # beyond net.core.rmem_max: needs CAP_NET_ADMIN
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        #: The receive buffer the kernel granted (bytes); a frame larger than this,
        #: arriving in one burst, loses packets when the reader falls behind.
        self.rcvbuf = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.sock.bind((bind, 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"gvsp-{self.port}",
                                        daemon=True)

    def start(self) -> None:
        """Start receiving."""
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(65536)
        view = memoryview(buffer)
        while not self._stop.is_set():
            try:
                size, peer = self.sock.recvfrom_into(buffer)
            except TimeoutError:
                continue
            except OSError:
                break
            with self._lock:
                if self.source is not None and peer[0] != self.source:
                    self.assembler.stats.packets_ignored += 1
                    continue
                self.assembler.feed(view[:size])

    def locked(self, action: Callable[[], None]) -> None:
        """Run ``action`` while no datagram is being assembled (for resets)."""
        with self._lock:
            action()

    def close(self) -> None:
        """Stop the thread and close the socket (waits up to 2 s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.sock.close()
