"""Regression guard: the Python work of one CA put taken by the hot lane, and of
one change posted to PVA.

catime's async puts (100,000 per DBR type, one PV) and any client writing a
setpoint in a loop pay the first per put; a PV updated at kHz rates pays the
second per change. The budgets count Python function calls
(``sys.setprofile``), not time: deterministic on any machine. What they keep
out: a caproto ``TimeStamp`` (a ctypes structure) made per change (reads make
it from the model's nanoseconds), the old value read for a put log the server
does not keep, caproto's conversion of a value the lane decodes itself, and
the PVA alarm fields rebuilt while the alarm stays the same.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from collections import Counter
from types import FrameType
from typing import Any

from harness.inproc import open_circuit
from podioc import IOC, pv
from podioc.protocols.pva.channels import PVABinding

PUTS = 100
#: Python calls per put: the lane (answer, _write, _connected, _steady,
#: writes_now x2, decode), the access check (2), the model (put_now, _checked,
#: coerce x2, within_limits, _commit, _passes, _settle_alarm, puts_now x2,
#: _public) and the CA channel's change handler (6), with a little room.
BUDGET = 34
DBR_DOUBLE, DBR_STRING = 6, 0


class Setpoint(IOC):
    x = pv.float(1.5, name="X", writable=True, units="mm", precision=3)


def _padded(text: bytes) -> bytes:
    """One DBR_STRING as libca sends it: the text and its NUL, padded to 8 bytes."""
    return text + b"\0" * (8 - len(text) % 8)


def _counting(calls: Counter[str]) -> Any:
    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            calls[f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:"
                  f"{frame.f_code.co_name}"] += 1
    return profile


def _write(sid: int, ioid: int, data_type: int, payload: bytes) -> bytes:
    return struct.pack(">HHHHII", 4, len(payload), data_type, 1, sid, ioid) + payload


async def _calls(data_type: int) -> tuple[Counter[str], float]:
    """Python calls made while the circuit answers PUTS writes of ``data_type``,
    and the value stored last."""
    ioc = Setpoint("PC:")
    opened = await open_circuit(ioc, ["PC:X"])
    try:
        sid = opened.sid(1)
        values = [float(i) + 0.25 for i in range(PUTS)]
        data = b"".join(
            _write(sid, i, data_type, struct.pack(">d", v) if data_type == DBR_DOUBLE
                   else _padded(b"%.2f" % v))
            for i, v in enumerate(values))
        await asyncio.get_running_loop().sock_sendall(opened.client, data)
        calls: Counter[str] = Counter()
        sys.setprofile(_counting(calls))
        try:
            await opened.circuit.recv()
        finally:
            sys.setprofile(None)
        assert not opened.circuit.circuit.parser.pending, "one read takes every put"
        return calls, float(ioc.x.value)
    finally:
        opened.close()


def _per_put(calls: Counter[str]) -> float:
    """Calls per put: those made once per put or more (the read and the loop
    turn around them are made a few times per batch)."""
    return sum(n for n in calls.values() if n >= PUTS) / PUTS


def test_a_double_put_in_the_lane_stays_within_its_call_budget() -> None:
    calls, last = asyncio.run(_calls(DBR_DOUBLE))
    assert last == PUTS - 1 + 0.25  # every put was taken, in order
    assert calls["hotlane.py:_write"] == PUTS, "the puts took the hot lane"
    per_put = _per_put(calls)
    assert per_put <= BUDGET, (per_put, sorted(calls.items(), key=lambda kv: -kv[1]))
    for absent in ("channels.py:epics_stamp", "putlog.py:current", "putlog.py:record"):
        assert not calls[absent], f"{absent} ran for a put"


def test_number_text_put_in_the_lane_stays_within_its_call_budget() -> None:
    calls, last = asyncio.run(_calls(DBR_STRING))
    assert last == PUTS - 1 + 0.25
    assert calls["hotlane.py:_write"] == PUTS
    assert calls["hotlane.py:_number_text"] == PUTS, "decoded in the lane"
    assert _per_put(calls) <= BUDGET


#: Python calls per change posted to PVA: the model's set (set, coerce x2,
#: _commit, _passes, _settle_alarm, the PV lookup and its descriptor) and the
#: binding (_on_change, the value, the time stamp, the alarm's identity, p4p's
#: post and its wrap), with a little room.
PVA_BUDGET = 19


def test_a_change_posted_to_pva_stays_within_its_call_budget() -> None:
    async def scenario() -> tuple[Counter[str], list[Any]]:
        ioc = Setpoint("PV:")
        binding = PVABinding(ioc.x)
        calls: Counter[str] = Counter()
        sys.setprofile(_counting(calls))
        try:
            for i in range(PUTS):
                ioc.x.set(i)
        finally:
            sys.setprofile(None)
        current = binding.shared.current()
        seen = [current["value"], current["alarm.severity"]]
        ioc.x.set_alarm(2, 3, "boom")  # a new alarm: its fields are made again
        current = binding.shared.current()
        seen += [current["alarm.severity"], current["alarm.message"],
                 current["timeStamp.nanoseconds"] == ioc.x.timestamp_ns % 1_000_000_000]
        return calls, seen

    calls, seen = asyncio.run(scenario())
    assert seen == [PUTS - 1, 0, 2, "boom", True]
    assert calls["channels.py:_on_change"] == PUTS, "every change was posted"
    assert calls["channels.py:_alarm"] <= 1, "the alarm's fields were rebuilt per change"
    per_change = _per_put(calls)
    assert per_change <= PVA_BUDGET, (per_change, sorted(calls.items(), key=lambda kv: -kv[1]))
