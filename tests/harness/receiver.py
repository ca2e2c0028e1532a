"""A log server stand-in: one TCP connection on loopback, everything it sends kept."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpReceiver:
    """Accepts one connection on a free loopback port and keeps what it receives."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(timeout)
        self.port: int = self.server.getsockname()[1]
        self.chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    self.chunks.append(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def close(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the sender to finish, then stop listening."""
        self._thread.join(timeout)
        self.server.close()

    def __enter__(self) -> TcpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self._thread.join(1.0)
