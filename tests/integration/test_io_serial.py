"""SerialConnection (serialx) against a device on a pseudo-terminal pair.

The test plays the device on the pty's master side; the client opens the
slave through a symlink, so a "replugged" device (a new pty) appears at the
same path, as a udev by-id link does.
"""

from __future__ import annotations

import asyncio
import os
import time
import tty
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from harness.aio import until
from podioc.io import (
    Backoff,
    DeviceNotConnected,
    DeviceProtocolError,
    DeviceTimeout,
    SerialConnection,
    Terminator,
)

FAST = Backoff(initial=0.05, maximum=0.2)


class PtyDevice:
    """A device on a pty master: answers each ``\\r``-ended line with ``reply(line)``."""

    def __init__(self, link: Path, reply: Callable[[bytes], bytes | None]) -> None:
        self.link = link
        self.reply = reply
        self.master = self.slave = -1
        self.received: list[bytes] = []
        self._buffer = b""

    def plug(self) -> None:
        """Create a new pty pair and point the link at its slave."""
        master, slave = os.openpty()
        tty.setraw(master)
        self.slave_name = os.ttyname(slave)
        self.slave = slave  # held open (the client opens it by name), so the master never
        self.master = master  # reads EIO while no client has the port open
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.slave_name)
        tmp.replace(self.link)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def unplug(self) -> None:
        """Close the master: the client's reads fail as when a USB adapter is pulled."""
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1
        self.link.unlink()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def _readable(self) -> None:
        try:
            self._buffer += os.read(self.master, 4096)
        except OSError:
            return
        while b"\r" in self._buffer:
            line, self._buffer = self._buffer.split(b"\r", 1)
            self.received.append(line)
            answer = self.reply(line)
            if answer is not None:
                self.write(answer)


def controller(line: bytes) -> bytes | None:
    """A temperature controller: ``ID?``, ``T?``, ``NOISE`` (binary junk), ``WAIT`` (no reply)."""
    if line == b"ID?":
        return b"TC-1 v2\r\n"
    if line == b"T?":
        return b"+21.50\r\n"
    if line == b"NOISE":
        return b"\x00" * 300
    if line == b"BIN":
        return b"\xff\r\n"
    return None


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def serial(link: Path, **options: object) -> SerialConnection:
    return SerialConnection(str(link), 9600, framing=Terminator("\r\n", "\r", max_frame=128),
                            probe="ID?", timeout=0.3, backoff=FAST, **options)  # type: ignore[arg-type]


def test_request_reply_over_a_pty(tmp_path: Path) -> None:
    async def main() -> None:
        device = PtyDevice(tmp_path / "ttyTC", controller)
        device.plug()
        async with serial(device.link, name="tc") as conn:
            await conn.wait_connected(10)
            assert conn.identity == "TC-1 v2"
            assert await conn.request("T?", parse=float) == 21.5
            results = await asyncio.gather(*(conn.request("T?") for _ in range(5)))
            assert results == ["+21.50"] * 5
            await conn.send("HEAT 1")
            await until(lambda: device.received[-1:] == [b"HEAT 1"], message="command seen")
        device.unplug()

    run(main())


def test_timeout_garbage_and_undecodable_replies(tmp_path: Path) -> None:
    async def main() -> None:
        device = PtyDevice(tmp_path / "ttyTC", controller)
        device.plug()
        async with serial(device.link, max_timeouts=3) as conn:
            await conn.wait_connected(10)
            start = time.monotonic()
            with pytest.raises(DeviceTimeout, match=r"no reply to b'WAIT' within 0.3 s"):
                await conn.request("WAIT")
            assert time.monotonic() - start < 2.0
            with pytest.raises(DeviceProtocolError, match="is not ascii text"):
                await conn.request("BIN")
            assert await conn.request("T?") == "+21.50"
            with pytest.raises(DeviceProtocolError, match="garbage from the device"):
                await conn.request("NOISE")
            await until(lambda: conn.connections == 2, message="port reopened")
            assert await conn.request("T?") == "+21.50"
        device.unplug()

    run(main())


def test_unplugged_device_fails_fast_and_comes_back(tmp_path: Path) -> None:
    async def main() -> None:
        device = PtyDevice(tmp_path / "ttyTC", controller)
        device.plug()
        reasons: list[str] = []
        conn = serial(device.link, name="tc")
        conn.on_disconnect(reasons.append)
        async with conn:
            await conn.wait_connected(10)
            device.unplug()
            await until(lambda: not conn.connected, message="unplug noticed")
            with pytest.raises(DeviceNotConnected, match=r"tc .*device not connected"):
                await conn.request("T?")
            await until(lambda: "no such file" in conn.reason, message="port gone")
            device.plug()  # a new pty at the same path
            await conn.wait_connected(10)
            assert await conn.request("T?") == "+21.50"
            assert conn.connections == 2
        assert reasons and reasons[-1] == "closed"
        device.unplug()

    run(main())


def test_port_without_device_is_not_connected(tmp_path: Path) -> None:
    """The port opens but nothing answers the probe: not connected, retried."""
    async def main() -> None:
        device = PtyDevice(tmp_path / "ttyTC", lambda line: None)
        device.plug()
        async with serial(device.link) as conn:
            await until(lambda: len(device.received) >= 2, message="probe retried")
            assert not conn.connected
            assert "no reply to b'ID?'" in conn.reason
            device.reply = controller
            await conn.wait_connected(10)
        device.unplug()

    run(main())
