"""TcpConnection against real peers on loopback: framing, one request at a time, faults.

Peers are asyncio servers in the test (free ports) and, for "device
restarted", the simulator process killed and started again on its port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from harness import free_port
from harness.aio import LineServer, echo_lines, until
from harness.sims import SimProcess
from podioc.io import (
    Backoff,
    DeviceNotConnected,
    DeviceProtocolError,
    DeviceTimeout,
    FixedLength,
    TcpConnection,
    Terminator,
)

FAST = Backoff(initial=0.05, maximum=0.2)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


@pytest.mark.parametrize("terminator", ["\r\n", "\n", b"\x03"])
def test_request_reply_with_terminators(terminator: str | bytes) -> None:
    term = terminator.encode() if isinstance(terminator, str) else terminator

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await echo_lines(reader, writer, term)

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, framing=terminator, backoff=FAST) as conn:
            await conn.wait_connected(10)
            assert await conn.request("*IDN?") == "ECHO *IDN?"
            assert await conn.request("12.5", parse=lambda r: float(r.split()[1])) == 12.5

    run(main())


def test_different_read_and_write_terminators() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readuntil(b"\r")
        writer.write(b"GOT " + line[:-1] + b"\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, framing=Terminator("\r\n", "\r")) as conn:
            await conn.wait_connected(10)
            assert await conn.request("A") == "GOT A"

    run(main())


def test_fixed_length_frames() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while command := await reader.read(4):
            # the 8-byte reply arrives in two pieces: framing must join them
            writer.write(command[::-1])
            await writer.drain()
            writer.write(b"done")
            await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, framing=FixedLength(8)) as conn:
            await conn.wait_connected(10)
            assert await conn.request_bytes(b"abcd") == b"dcbadone"
            assert await conn.request_bytes(b"wxyz") == b"zyxwdone"

    run(main())


def test_one_request_in_flight_at_a_time() -> None:
    """Concurrent requests are serialised: the peer never sees a second before replying."""
    overlaps = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: asyncio.Queue[bytes] = asyncio.Queue()
        busy = False

        async def respond() -> None:
            nonlocal busy
            while True:
                line = await lines.get()
                await asyncio.sleep(0.02)
                writer.write(b"R " + line)
                await writer.drain()
                busy = False

        responder = asyncio.ensure_future(respond())
        try:
            while line := await reader.readline():
                if busy:  # a request before the reply to the one before
                    overlaps.append(line)
                busy = True
                lines.put_nowait(line)
        finally:
            responder.cancel()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, timeout=5) as conn:
            await conn.wait_connected(10)
            replies = await asyncio.gather(*(conn.request(f"Q{i}") for i in range(10)))
            assert replies == [f"R Q{i}" for i in range(10)]

    run(main())
    assert overlaps == []


def test_connection_refused_fails_fast_and_retries() -> None:
    port = free_port()

    async def main() -> None:
        conn = TcpConnection("127.0.0.1", port, name="psu", backoff=FAST)
        await conn.start()
        try:
            await until(lambda: conn.reason == "connection refused", message="refused")
            start = time.monotonic()
            with pytest.raises(DeviceNotConnected) as info:
                await conn.request("*IDN?")
            assert time.monotonic() - start < 0.5
            assert "device not connected" in str(info.value)
            assert "psu (127.0.0.1:" in str(info.value) and "connection refused" in str(info.value)
            # the device appears on that port: the client connects by itself
            server = await asyncio.start_server(echo_lines, "127.0.0.1", port)
            async with server:
                await conn.wait_connected(10)
                assert await conn.request("X") == "ECHO X"
        finally:
            await conn.close()

    run(main())


def test_slow_reply_times_out_and_the_late_reply_is_dropped() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.startswith(b"SLOW"):
                await release.wait()
            writer.write(b"R " + line)
            await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, timeout=0.3, max_timeouts=2) as conn:
            await conn.wait_connected(10)
            start = time.monotonic()
            with pytest.raises(DeviceTimeout, match=r"no reply to b'SLOW' within 0.3 s"):
                await conn.request("SLOW")
            assert 0.25 < time.monotonic() - start < 2.0
            assert conn.connected  # one timeout does not drop the link
            release.set()
            await until(lambda: conn.late_replies == 1, message="late reply dropped")
            assert await conn.request("NEXT") == "R NEXT"  # in step again

    run(main())


def test_timeouts_in_a_row_reconnect() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if not line.startswith(b"MUTE"):
                writer.write(b"R " + line)
                await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, timeout=0.2, max_timeouts=2, backoff=FAST) as conn:
            lost: list[str] = []
            conn.on_disconnect(lost.append)
            await conn.wait_connected(10)
            for _ in range(2):
                with pytest.raises(DeviceTimeout):
                    await conn.request("MUTE")
            assert not conn.connected
            with pytest.raises(DeviceNotConnected, match="no reply to 2 requests in a row"):
                await conn.request("X")
            await until(lambda: conn.connections == 2, message="reconnected")
            assert await conn.request("X") == "R X"
            assert lost == ["no reply to 2 requests in a row (timeout 0.2 s); reconnecting"]

    run(main())


def test_dropped_mid_reply_fails_at_once_and_reconnects() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.startswith(b"HALF"):
                writer.write(b"12.")  # half a reply, then the device goes away
                await writer.drain()
                writer.transport.abort()
                return
            writer.write(b"R " + line)
            await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, timeout=5, backoff=FAST) as conn:
            await conn.wait_connected(10)
            start = time.monotonic()
            with pytest.raises(DeviceNotConnected,
                               match="connection lost while waiting for the reply to b'HALF'"):
                await conn.request("HALF")
            assert time.monotonic() - start < 2.0  # not the 5 s timeout
            await until(lambda: conn.connections == 2, message="reconnected")
            assert await conn.request("X") == "R X"  # the half reply is gone

    run(main())


GarbageHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def test_garbage_without_terminator_reconnects() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.startswith(b"NOISE"):
                writer.write(b"\x07" * 5000)
            else:
                writer.write(b"R " + line)
            await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, framing=Terminator("\n", max_frame=1024),
                backoff=FAST) as conn:
            await conn.wait_connected(10)
            with pytest.raises(DeviceProtocolError, match="garbage from the device"):
                await conn.request("NOISE")
            await until(lambda: conn.connections == 2, message="reconnected")
            assert await conn.request("X") == "R X"

    run(main())


def test_undecodable_and_unparseable_replies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(b"\xff\xfe\n" if line.startswith(b"BIN") else b"abc\n")
            await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port) as conn:
            await conn.wait_connected(10)
            with pytest.raises(DeviceProtocolError, match="is not ascii text"):
                await conn.request("BIN")
            with pytest.raises(DeviceProtocolError,
                               match=r"cannot read the reply 'abc' to 'MEAS\?'"):
                await conn.request("MEAS?", parse=float)
            assert conn.connected and await conn.request("X") == "abc"

    run(main())


def test_unsolicited_messages() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"EVENT hello\n")  # unprompted, right after connecting
        while line := await reader.readline():
            writer.write(b"EVENT busy\nR " + line)  # an event just before the reply
            await writer.drain()

    async def main() -> None:
        events: list[str] = []

        async def on_event(text: str) -> None:
            events.append(text)

        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, unsolicited=on_event,
                is_unsolicited=lambda text: text.startswith("EVENT")) as conn:
            await conn.wait_connected(10)
            await until(lambda: events == ["EVENT hello"], message="first event")
            assert await conn.request("Q") == "R Q"
            await until(lambda: events == ["EVENT hello", "EVENT busy"], message="second")

    run(main())


def test_probe_must_be_answered_to_count_as_connected() -> None:
    answer = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            if answer.is_set():
                writer.write(b"ACME,PSU,42\n")
                await writer.drain()

    async def main() -> None:
        async with LineServer(handler) as server, TcpConnection(
                "127.0.0.1", server.port, probe="*IDN?", timeout=0.2, backoff=FAST) as conn:
            await until(lambda: server.accepted >= 2, message="probe retried")
            assert not conn.connected
            assert "no reply to b'*IDN?'" in conn.reason
            answer.set()
            await conn.wait_connected(10)
            assert conn.identity == "ACME,PSU,42"

    run(main())


def test_device_restarted_on_the_same_port(tmp_path: Path) -> None:
    with SimProcess(log_dir=tmp_path) as sim:
        async def main() -> None:
            events: list[str] = []
            conn = TcpConnection("127.0.0.1", sim.port, name="sim", backoff=FAST)
            conn.on_connect(lambda: events.append("up"))
            conn.on_disconnect(lambda reason: events.append(f"down: {reason}"))
            async with conn:
                await conn.wait_connected(10)
                assert await conn.request("*IDN?") == "PODIOC,SIMDEVICE,0,1"
                await asyncio.to_thread(sim.kill)
                await until(lambda: not conn.connected, message="loss noticed")
                with pytest.raises(DeviceNotConnected):
                    await conn.request("*IDN?")
                await asyncio.to_thread(sim.start)
                await conn.wait_connected(15)
                assert await conn.request("SET?") == "1"
            assert events[:2] == ["up", "down: closed by the device"]
            assert events[2] == "up" and events[-1] == "down: closed"

        run(main())


def test_close_stops_reconnecting() -> None:
    async def main() -> None:
        conn = TcpConnection("127.0.0.1", free_port(), backoff=FAST)
        await conn.start()
        await until(lambda: conn.reason == "connection refused", message="refused")
        await conn.close()
        assert conn.reason == "closed"
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("connection")]

    run(main())
