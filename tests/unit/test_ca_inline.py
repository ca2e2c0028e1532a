"""Requests answered as they arrive (``protocols/ca/inline.py``): the same replies,
in the same order, as the reading task gives; what the lane does not answer
reaches the task intact.

A real circuit on a Unix socketpair, its reading task running as the server
runs it. Which path answered is counted by wrapping ``Circuit._answer`` (the
reading task's batch), not timed.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import caproto as ca

from harness.inproc import InProcessCircuit, open_circuit
from podioc import IOC, pv
from podioc.protocols.ca import inline
from podioc.protocols.ca.circuit import Circuit

DBR_DOUBLE = 6
READ_NOTIFY, WRITE_NOTIFY = 15, 19


class Inline(IOC):
    x = pv.float(1.5, name="X", writable=True, units="mm")


def _read(sid: int, ioid: int) -> bytes:
    return struct.pack(">HHHHII", READ_NOTIFY, 0, DBR_DOUBLE, 1, sid, ioid)


def _put(sid: int, ioid: int, value: float) -> bytes:
    return struct.pack(">HHHHIId", WRITE_NOTIFY, 8, DBR_DOUBLE, 1, sid, ioid, value)


async def _with_circuit(body: Callable[[InProcessCircuit, list[int]], Awaitable[Any]]) -> Any:
    """Run ``body(opened, batches)``; ``batches`` counts the reading task's batches."""
    batches: list[int] = []
    answer = Circuit._answer

    async def counted(self: Circuit, commands: list[Any]) -> None:
        batches.append(len(commands))
        await answer(self, commands)

    opened = await open_circuit(Inline("IL:"), ["IL:X", "IL:X.DESC"], inline=True)
    Circuit._answer = counted  # type: ignore[method-assign]
    task = opened.serve()
    try:
        return await body(opened, batches)
    finally:
        Circuit._answer = answer  # type: ignore[method-assign]
        task.cancel()
        opened.close()


async def _replies(opened: InProcessCircuit, data: bytes, want: int
                   ) -> list[tuple[int, int, int, bytes]]:
    await asyncio.get_running_loop().sock_sendall(opened.client, data)
    got = await opened.replies((READ_NOTIFY, WRITE_NOTIFY, ca.ErrorResponse.ID), want)
    assert len(got) == want, got
    return got


def _value(reply: tuple[int, int, int, bytes]) -> float:
    return float(struct.unpack(">d", reply[3][:8])[0])


def test_requests_one_at_a_time_are_answered_without_the_reading_task() -> None:
    async def body(opened: InProcessCircuit, batches: list[int]) -> list[Any]:
        x = opened.sid(1)
        seen = []
        for i in range(20):
            (put,) = await _replies(opened, _put(x, 100 + i, float(i)), 1)
            (read,) = await _replies(opened, _read(x, 200 + i), 1)
            seen.append((put[0], put[2], read[2], _value(read)))
        return [seen, list(batches)]

    seen, batches = asyncio.run(_with_circuit(body))
    assert seen == [(WRITE_NOTIFY, 100 + i, 200 + i, float(i)) for i in range(20)]
    assert batches == [], "the reading task answered a request the lane takes"


def test_what_the_lane_declines_reaches_the_reading_task_in_order() -> None:
    async def body(opened: InProcessCircuit, batches: list[int]) -> list[Any]:
        x, desc = opened.sid(1), opened.sid(2)
        # a field's read is declined by the lane: it and what follows go to the task
        mixed = await _replies(opened, _read(x, 1) + _read(desc, 2) + _put(x, 3, 7.0)
                               + _read(x, 4), 4)
        after_mixed = list(batches)
        # a message the parser does not leave for the lane: the whole batch to the task
        whole = await _replies(opened, bytes(ca.EventsOnRequest()) + _read(x, 5), 1)
        after_whole = list(batches)
        # an incomplete message at the end: the task keeps it until the rest comes
        data = _read(x, 6) + _read(x, 7)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(opened.client, data[:20])
        first = await opened.replies((READ_NOTIFY,), 1)
        rest = await _replies(opened, data[20:], 1)
        return [[(r[0], r[2]) for r in mixed], _value(mixed[3]), after_mixed,
                [r[2] for r in whole], after_whole, [r[2] for r in first + rest]]

    mixed, value, after_mixed, whole, after_whole, split = asyncio.run(_with_circuit(body))
    assert mixed == [(READ_NOTIFY, 1), (READ_NOTIFY, 2), (WRITE_NOTIFY, 3), (READ_NOTIFY, 4)]
    assert value == 7.0, "the read after the put saw it"
    assert after_mixed == [3], "the declined read and the two after it went to the task"
    assert whole == [5] and after_whole == [3, 2]
    assert split == [6, 7]


def test_while_a_reply_is_written_in_pieces_requests_wait_for_the_reading_task() -> None:
    async def body(opened: InProcessCircuit, batches: list[int]) -> list[Any]:
        x = opened.sid(1)
        loop = asyncio.get_running_loop()
        async with opened.circuit.client.send_lock:  # as a large array being written
            await loop.sock_sendall(opened.client, _read(x, 1))
            deadline = loop.time() + 10
            while not batches and loop.time() < deadline:
                await asyncio.sleep(0)  # until the reading task has the request
        (reply,) = await opened.replies((READ_NOTIFY,), 1)
        return [reply[2], list(batches)]

    assert asyncio.run(_with_circuit(body)) == [1, [1]]


def test_a_burst_is_answered_in_order_whichever_path_takes_each_part() -> None:
    """Reads larger than ``inline.SMALL`` go to the task; smaller ones may not."""
    async def body(opened: InProcessCircuit, batches: list[int]) -> list[Any]:
        x = opened.sid(1)
        data = b"".join(_put(x, 2 * i, float(i)) + _read(x, 2 * i + 1) for i in range(300))
        assert len(data) > inline.SMALL
        got = await _replies(opened, data, 600)
        return [[r[2] for r in got], [_value(r) for r in got if r[0] == READ_NOTIFY],
                sum(batches)]

    ioids, values, by_task = asyncio.run(_with_circuit(body))
    assert ioids == list(range(600))
    assert values == [float(i) for i in range(300)], "each read saw the put before it"
    assert by_task > 0, "a burst's large reads are the reading task's"
