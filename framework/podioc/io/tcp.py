"""A device on a TCP port (a controller's socket, a terminal server, a simulator)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from .stream import StreamConnection

#: TCP keepalive: probe an idle link after 10 s, every 5 s, give up after 3 probes,
#: so a device that vanishes without closing (cable, power) is noticed in ~25 s
#: even when no request is made.
KEEPALIVE = (10, 5, 3)


class TcpConnection(StreamConnection):
    """Request/reply with a device over TCP; see :class:`StreamConnection` for the options.

    ```python
    psu = TcpConnection("10.0.0.5", 5025, framing="\\n", timeout=1.0, name="psu")
    await psu.start()                       # in @startup; connects in the background
    volts = await psu.request("MEAS:VOLT? (@1)", parse=float)
    ```
    """

    def __init__(self, host: str, port: int, *, name: str | None = None, **options: Any) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"TcpConnection: port {port} is not a TCP port (1..65535)")
        self.host = host
        self.port = port
        super().__init__(name or f"{host}:{port}", f"{host}:{port}", **options)

    async def _open_transport(self, protocol: Callable[[], asyncio.Protocol]
                              ) -> asyncio.WriteTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(protocol, self.host, self.port)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _keepalive(sock)
        return transport


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in zip(("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"), KEEPALIVE,
                             strict=True):
        if hasattr(socket, option):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
