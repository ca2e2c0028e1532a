"""Regression guard: a CA put with nothing to await is answered within its batch.

EPICS base's ``catime`` sends 10,000 puts in one TCP message; a task per put
(caproto's way, for puts that may wait on a device) cost about 25 µs of the
IOC's 47 µs per put. A put to a PV without validators or ``on_put`` hooks, or
to a writable record field, is now done and answered as the batch is read, in
order, as rsrv does a soft record's put. Counted here: tasks started for puts,
the model's value after the batch, and the replies on the wire. No timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import caproto as ca

from harness.inproc import InProcessCircuit, open_circuit
from podioc import IOC, pv

PUTS = 200
DBR_DOUBLE, DBR_STRING = 6, 0
ECA_NORMAL = ca.CAStatus.ECA_NORMAL.value.code_with_severity
ECA_PUTFAIL = ca.CAStatus.ECA_PUTFAIL.value.code_with_severity


class Puts(IOC):
    plain = pv.float(0.0, name="PLAIN", writable=True, limits=(-1e9, 1e9))
    hooked = pv.float(0.0, name="HOOKED", writable=True)
    seen: list[float]

    @hooked.on_put
    async def _seen(self, value: float) -> None:
        self.seen.append(value)


async def _messages(opened: InProcessCircuit, want: int) -> list[tuple[int, int, int, bytes]]:
    """The next ``want`` put replies (WRITE_NOTIFY and ERROR messages)."""
    return await opened.replies((ca.WriteNotifyResponse.ID, ca.ErrorResponse.ID), want)


def _count_write_tasks(opened: InProcessCircuit) -> list[int]:
    started = [0]
    original = opened.circuit._start_write_task

    async def counted(handle_write: Any) -> None:
        started[0] += 1
        await original(handle_write)

    opened.circuit._start_write_task = counted
    return started


async def _batches() -> dict[str, Any]:
    ioc = Puts("PN:")
    ioc.seen = []
    opened = await open_circuit(ioc, ["PN:PLAIN", "PN:HOOKED", "PN:PLAIN.EGU"])
    try:
        plain, hooked, egu = opened.sid(1), opened.sid(2), opened.sid(3)
        tasks = _count_write_tasks(opened)
        out: dict[str, Any] = {}
        # 200 put-callbacks and 200 plain puts in one message, then a refused one
        await opened.send(
            *(ca.WriteNotifyRequest([float(i)], DBR_DOUBLE, 1, plain, 100 + i)
              for i in range(1, PUTS + 1)),
            *(ca.WriteRequest([float(i)], DBR_DOUBLE, 1, plain, 0)
              for i in range(PUTS + 1, 2 * PUTS + 1)),
            ca.WriteNotifyRequest([1e12], DBR_DOUBLE, 1, plain, 999),
            ca.WriteNotifyRequest([b"mm"], DBR_STRING, 1, egu, 1000))
        out["value_after_batch"] = ioc.plain.value  # before anything else ran
        out["units_after_batch"] = ioc.plain.spec.units
        out["tasks_plain"] = tasks[0]
        out["replies"] = await _messages(opened, PUTS + 3)
        await opened.send(*(ca.WriteNotifyRequest([float(i)], DBR_DOUBLE, 1, hooked, 2000 + i)
                            for i in range(1, 4)))
        out["tasks_hooked"] = tasks[0] - out["tasks_plain"]
        out["hooked_replies"] = await _messages(opened, 3)
        out["seen"] = list(ioc.seen)
        return out
    finally:
        opened.close()


def test_puts_with_nothing_to_await_are_answered_in_their_batch() -> None:
    got = asyncio.run(_batches())
    assert got["tasks_plain"] == 0, f"{got['tasks_plain']} tasks for puts with nothing to await"
    assert got["value_after_batch"] == 2 * PUTS  # every put applied, in order
    assert got["units_after_batch"] == "mm"
    replies = got["replies"]
    notify = ca.WriteNotifyResponse.ID
    assert [(c, s, i) for c, s, i, _ in replies[:PUTS]] == [
        (notify, ECA_NORMAL, 100 + i) for i in range(1, PUTS + 1)]
    # the refused put: WRITE_NOTIFY with ECA_PUTFAIL, then an error naming the reason
    cmd, status, ioid, _ = replies[PUTS]
    assert (cmd, status, ioid) == (notify, ECA_PUTFAIL, 999)
    cmd, _, _, payload = replies[PUTS + 1]
    assert cmd == ca.ErrorResponse.ID
    assert b"PN:PLAIN: 1000000000000.0 is outside the limits -1e+09 .. 1e+09" in payload
    assert replies[PUTS + 2][:3] == (notify, ECA_NORMAL, 1000)


def test_puts_with_hooks_still_run_in_their_own_task() -> None:
    got = asyncio.run(_batches())
    assert got["tasks_hooked"] == 3
    assert [(c, s, i) for c, s, i, _ in got["hooked_replies"]] == [
        (ca.WriteNotifyResponse.ID, ECA_NORMAL, 2000 + i) for i in range(1, 4)]
    assert got["seen"] == [1.0, 2.0, 3.0]
