"""UdpConnection against real datagram peers on loopback: retries, timeouts, refusal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest

from harness import free_port
from harness.aio import until
from podioc.io import Backoff, DeviceNotConnected, DeviceTimeout, UdpConnection

FAST = Backoff(initial=0.05, maximum=0.2)


class Peer(asyncio.DatagramProtocol):
    """A UDP device: ``answer(datagram)`` gives the reply (None: stay silent)."""

    def __init__(self, answer: Callable[[bytes], bytes | None]) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        reply = self.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def peer(answer: Callable[[bytes], bytes | None], port: int = 0) -> tuple[Peer, int]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Peer(answer), local_addr=("127.0.0.1", port))
    return protocol, transport.get_extra_info("sockname")[1]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def test_request_reply_with_terminator() -> None:
    async def main() -> None:
        device, port = await peer(lambda d: b"ACK " + d)
        async with UdpConnection("127.0.0.1", port, terminator="\n", timeout=0.5) as conn:
            await conn.wait_connected(10)
            assert await conn.request("PING") == "ACK PING"
            assert device.received == [b"PING\n"]
        assert device.transport is not None
        device.transport.close()

    run(main())


def test_lost_datagrams_are_retried() -> None:
    """The device ignores every first copy of a request: the retry gets the answer."""
    seen: set[bytes] = set()

    def answer(data: bytes) -> bytes | None:
        if data not in seen:
            seen.add(data)
            return None
        return b"OK " + data

    async def main() -> None:
        device, port = await peer(answer)
        async with UdpConnection("127.0.0.1", port, timeout=0.2, retries=2) as conn:
            await conn.wait_connected(10)
            assert await conn.request("A") == "OK A"
            assert device.received == [b"A", b"A"]
        assert device.transport is not None
        device.transport.close()

    run(main())


def test_silence_times_out_then_disconnects_and_probe_brings_it_back() -> None:
    answering = False

    async def main() -> None:
        nonlocal answering
        device, port = await peer(lambda d: d.upper() if answering else None)
        answering = True
        async with UdpConnection("127.0.0.1", port, timeout=0.1, retries=1, probe="id?",
                                 backoff=FAST) as conn:
            await conn.wait_connected(10)
            answering = False
            start = time.monotonic()
            with pytest.raises(DeviceTimeout, match=r"no reply to b'x' after 2 tries of 0.1 s"):
                await conn.request("x")
            assert 0.15 < time.monotonic() - start < 2.0
            assert not conn.connected
            with pytest.raises(DeviceNotConnected, match="device not connected"):
                await conn.request("x")
            answering = True
            await conn.wait_connected(10)
            assert await conn.request("x") == "X"
        assert device.transport is not None
        device.transport.close()

    run(main())


def test_nothing_listening_is_refused() -> None:
    async def main() -> None:
        port = free_port()
        async with UdpConnection("127.0.0.1", port, timeout=0.5, probe="id?",
                                 backoff=FAST) as conn:
            await until(lambda: "connection refused" in conn.reason, message="refused")
            with pytest.raises(DeviceNotConnected, match="connection refused"):
                await conn.request("x")
            device, _ = await peer(lambda d: b"here", port)  # the device starts
            await conn.wait_connected(10)
            assert await conn.request("x") == "here"
        assert device.transport is not None
        device.transport.close()

    run(main())


def test_match_pairs_replies_with_requests() -> None:
    """Replies carry the request's id; one with another id is dropped, not returned."""
    received: list[bytes] = []

    def answer(data: bytes) -> bytes:
        received.append(data)
        tag = data.split(b":")[0]
        return b"0:stale" if len(received) == 1 else tag + b":fresh"

    async def main() -> None:
        device, port = await peer(answer)
        conn = UdpConnection("127.0.0.1", port, timeout=0.3, retries=1,
                             match=lambda req, rep: req.split(b":")[0] == rep.split(b":")[0])
        async with conn:
            await conn.wait_connected(10)
            # the first try is answered with a stale id: dropped; the retry gets its own
            assert await conn.request_bytes(b"2:get") == b"2:fresh"
            assert conn.unmatched == 1
            assert await conn.request_bytes(b"3:get") == b"3:fresh"
        assert device.transport is not None
        device.transport.close()

    run(main())
