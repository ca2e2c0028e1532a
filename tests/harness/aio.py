"""Helpers for asyncio tests of device connections: polling and in-test peers.

``until`` polls a condition to a deadline (never sleep-then-assert);
``LineServer`` is a TCP peer on a free loopback port whose behaviour each
test gives as an async handler of one connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
                message: str = "condition") -> Any:
    """Return once ``predicate()`` is truthy (polled every ``interval`` s), else fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     terminator: bytes = b"\n") -> None:
    """Answer each line ``X`` with ``ECHO X`` (same terminator)."""
    try:
        while True:
            line = await reader.readuntil(terminator)
            writer.write(b"ECHO " + line)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class LineServer:
    """A TCP server on 127.0.0.1 and a free port, running ``handler`` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LineServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.add(writer)
        try:
            await self.handler(reader, writer)
        finally:
            self.writers.discard(writer)
            writer.close()

    def abort_all(self) -> None:
        """Reset every open connection (the device drops its clients)."""
        for writer in list(self.writers):
            writer.transport.abort()

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.abort_all()
        self.server.close()
        await self.server.wait_closed()
