"""A device on a serial line (RS-232/485, USB adapter, pty), through ``serialx``.

serialx is a native asyncio serial library (no reader thread, no polling),
typed, and maintained; it also opens ``socket://host:port`` and
``rfc2217://host:port`` URLs for serial lines behind terminal servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from .stream import StreamConnection


class SerialConnection(StreamConnection):
    """Request/reply with a device on a serial port; see :class:`StreamConnection`.

    ``port`` is a device path (``/dev/ttyUSB0``) or a serialx URL.
    ``serial_options`` go to ``serialx.create_serial_connection`` (e.g.
    ``{"parity": serialx.Parity.EVEN, "rtscts": True}``).

    ```python
    tc = SerialConnection("/dev/ttyUSB0", 9600, framing=Terminator("\\r\\n", "\\r"), probe="ID?")
    ```
    A serial port opens whether or not a device is attached: give a
    ``probe`` so that "connected" means "the device answered".
    """

    def __init__(self, port: str, baudrate: int = 9600, *, name: str | None = None,
                 serial_options: Mapping[str, Any] | None = None, **options: Any) -> None:
        self.port = port
        self.baudrate = baudrate
        self.serial_options = dict(serial_options or {})
        super().__init__(name or port, f"{port} @ {baudrate} baud", **options)

    async def _open_transport(self, protocol: Callable[[], asyncio.Protocol]
                              ) -> asyncio.WriteTransport:
        import serialx

        transport, _ = await serialx.create_serial_connection(
            asyncio.get_running_loop(), protocol, self.port, baudrate=self.baudrate,
            **self.serial_options)
        return transport
