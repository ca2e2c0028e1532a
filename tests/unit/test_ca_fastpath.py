"""Regression guard: reads and new subscriptions of an unchanged PV convert its value
once (fastpath), whatever the number of requests, and a change is never hidden.

EPICS base's ``catime`` sends thousands of reads in one TCP message and
``acctst`` makes 500 subscriptions at a time on one channel; caproto converted
the value for every one. Counted here: calls of the channel's conversion
(``_read``) and the replies on the wire. No timing.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import caproto as ca

from harness.inproc import InProcessCircuit, open_circuit
from podioc import IOC, pv

REQUESTS = 200
DBR_DOUBLE, DBR_GR_DOUBLE = 6, 27


class One(IOC):
    x = pv.float(1.5, name="X", units="mm", precision=3, writable=True)


async def _replies(opened: InProcessCircuit, command: int, want: int) -> list[tuple[int, bytes]]:
    """(parameter 2, payload) of ``want`` messages with this command id."""
    return [(p2, payload) for _, _, p2, payload in await opened.replies((command,), want)]


def _count_conversions(channel: Any) -> list[int]:
    calls = [0]
    original = channel._read

    async def counted(data_type: Any) -> Any:
        calls[0] += 1
        return await original(data_type)

    channel._read = counted
    return calls


async def _reads_and_subscriptions() -> dict[str, Any]:
    ioc = One("FP:")
    opened = await open_circuit(ioc, ["FP:X"])
    try:
        sid = opened.sid(1)
        calls = _count_conversions(opened.ctx["FP:X"])
        await opened.send(*(ca.ReadNotifyRequest(DBR_DOUBLE, 1, sid, 1000 + i)
                             for i in range(REQUESTS)))
        reads = await _replies(opened, ca.ReadNotifyResponse.ID, REQUESTS)
        read_calls = calls[0]
        await opened.send(*(ca.EventAddRequest(DBR_GR_DOUBLE, 1, sid, 5000 + i, 0, 0, 0, 5)
                            for i in range(REQUESTS)))
        firsts = await _replies(opened, ca.EventAddResponse.ID, REQUESTS)
        subscribe_calls = calls[0] - read_calls
        ioc.x.set(2.25)
        updates = await _replies(opened, ca.EventAddResponse.ID, REQUESTS)
        await opened.send(ca.ReadNotifyRequest(DBR_DOUBLE, 1, sid, 9999))
        after = await _replies(opened, ca.ReadNotifyResponse.ID, 1)
        return dict(reads=reads, read_calls=read_calls, firsts=firsts,
                    subscribe_calls=subscribe_calls, updates=updates, after=after)
    finally:
        opened.close()


def test_repeated_requests_convert_once_and_follow_changes() -> None:
    got = asyncio.run(_reads_and_subscriptions())
    assert [ioid for ioid, _ in got["reads"]] == [1000 + i for i in range(REQUESTS)]
    assert {struct.unpack(">d", p)[0] for _, p in got["reads"]} == {1.5}
    assert got["read_calls"] == 1, f"{REQUESTS} reads converted {got['read_calls']} times"
    assert [s for s, _ in got["firsts"]] == [5000 + i for i in range(REQUESTS)]
    assert len({p for _, p in got["firsts"]}) == 1  # the same DBR_GR_DOUBLE body
    assert got["subscribe_calls"] <= 1, f"{REQUESTS} subscriptions converted " \
                                        f"{got['subscribe_calls']} times"
    # every subscription was registered for updates, and the change reached them
    assert sorted(s for s, _ in got["updates"]) == [5000 + i for i in range(REQUESTS)]
    assert all(struct.unpack_from(">d", p, len(p) - 8)[0] == 2.25 for _, p in got["updates"])
    assert struct.unpack(">d", got["after"][0][1])[0] == 2.25
