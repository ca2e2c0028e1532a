"""The live PV (podioc.model.state): put ordering, refusals change nothing, set(), alarms,
timestamps and subscribers. No event loop beyond ``asyncio.run`` per put."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
import pytest

from podioc import IOC, PV, PutRefused, Severity, Status, pv


class Recorder(IOC):
    """Records the order of everything that happens during a put."""

    level = pv.float(1.0, limits=(0, 10), alarm=pv.Alarm(high=8, hihi=9), writable=True)
    count = pv.int(0, writable=True)
    mode = pv.enum(["A", "B", "C"], "A", writable=True)
    fixed = pv.float(2.0)
    wave = pv.waveform(4, [1.0], limits=(-5, 5), writable=True)

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self.events: list[tuple[str, Any]] = []
        self.refuse = False
        for live in self:
            live.subscribe(lambda p: self.events.append(("commit", p.value)))

    @level.validator
    async def _first(self, value: float) -> float:
        self.events.append(("validator1", value))
        if self.refuse:
            raise PutRefused("refused by the first validator")
        return value * 2 if value < 1 else value

    @level.validator
    async def _second(self, value: float) -> None:
        self.events.append(("validator2", value))

    @level.on_put
    async def _after(self, value: float) -> None:
        await asyncio.sleep(0)
        self.events.append(("on_put", value))

    @count.validator  # type: ignore[arg-type]  # returns a str on purpose
    async def _as_text(self, value: int) -> str:
        return str(value + 1)  # a replacement is coerced like a client value

    @mode.validator
    async def _mode(self, value: str) -> None:
        self.events.append(("mode validator", value))

    @mode.on_put
    async def _mode_put(self, value: str) -> None:
        self.events.append(("mode on_put", value))


def put(live: PV, value: Any) -> None:
    asyncio.run(live.put(value))


@pytest.fixture
def ioc() -> Recorder:
    return Recorder("R:")


def test_put_order(ioc: Recorder) -> None:
    put(ioc.level, 5.0)
    assert ioc.events == [("validator1", 5.0), ("validator2", 5.0), ("commit", 5.0),
                          ("on_put", 5.0)]


def test_validator_replacement_feeds_the_next(ioc: Recorder) -> None:
    put(ioc.level, 0.5)
    assert ioc.events == [("validator1", 0.5), ("validator2", 1.0), ("commit", 1.0),
                          ("on_put", 1.0)]
    put(ioc.count, 4)
    assert ioc.count.value == 5 and isinstance(ioc.count.value, int)


def test_enum_hooks_see_state_names(ioc: Recorder) -> None:
    put(ioc.mode, 2)
    assert ioc.events == [("mode validator", "C"), ("commit", "C"), ("mode on_put", "C")]
    assert (ioc.mode.value, ioc.mode.index, ioc.mode.raw) == ("C", 2, 2)


@pytest.mark.parametrize(("attr", "value", "message"), [
    ("fixed", 1.0, "R:FIXED is read-only"),
    ("level", "abc", "R:LEVEL: 'abc' is not a number"),
    ("level", 11.0, "R:LEVEL: 11.0 is outside the limits 0 .. 10"),
    ("level", -0.1, "outside the limits"),
    ("wave", [0.0, 6.0], "R:WAVE: an element is outside the limits -5 .. 5"),
    ("wave", [1, 2, 3, 4, 5], "exceeds the maximum of 4"),
    ("mode", "D", "R:MODE: 'D' is not one of"),
])
def test_refusals_before_validators_change_nothing(ioc: Recorder, attr: str, value: Any,
                                                   message: str) -> None:
    live = ioc.pv_by_attr(attr)
    before = (live.raw, live.timestamp_ns, live.alarm)
    with pytest.raises(PutRefused) as info:
        put(live, value)
    assert message in str(info.value)
    assert ioc.events == []  # no validator, no commit, no hook
    after = (live.raw, live.timestamp_ns, live.alarm)
    assert after[0] is before[0] or np.array_equal(after[0], before[0])
    assert after[1:] == before[1:]


@pytest.mark.parametrize(("attr", "value", "message"), [
    ("fixed", 1.0, "R:FIXED is read-only"),
    ("wave", [0.0, 6.0], "R:WAVE: an element is outside the limits -5 .. 5"),
    ("wave", [1, 2, 3, 4, 5], "exceeds the maximum of 4"),
])
def test_put_now_refuses_as_put_does(ioc: Recorder, attr: str, value: Any,
                                     message: str) -> None:
    live = ioc.pv_by_attr(attr)
    assert live.puts_now  # no validators, no hooks
    before = (live.timestamp_ns, live.alarm)
    with pytest.raises(PutRefused) as info:
        live.put_now(value)
    assert message in str(info.value)
    assert (live.timestamp_ns, live.alarm) == before and ioc.events == []


def test_put_now_stores_and_posts_as_put_does(ioc: Recorder) -> None:
    assert list(ioc.wave.put_now([1, 2])) == [1.0, 2.0]
    assert [list(v) for _, v in ioc.events] == [[1.0, 2.0]]  # committed and posted once
    assert not ioc.level.puts_now  # validators and a hook: only put() may take it
    with pytest.raises(RuntimeError, match="use put"):
        ioc.level.put_now(2.0)
    assert ioc.level.value == 1.0


def test_validator_refusal_changes_nothing(ioc: Recorder) -> None:
    ioc.refuse = True
    stamp = ioc.level.timestamp_ns
    with pytest.raises(PutRefused, match=r"^R:LEVEL: refused by the first validator$"):
        put(ioc.level, 3.0)
    assert ioc.events == [("validator1", 3.0)]
    assert (ioc.level.value, ioc.level.timestamp_ns) == (1.0, stamp)


def test_closed_puts(ioc: Recorder) -> None:
    ioc.level.close_puts()
    with pytest.raises(PutRefused, match="shutting down"):
        put(ioc.level, 2.0)
    ioc.level.set(2.0)  # IOC code may still set values
    assert ioc.level.value == 2.0


def test_set_applies_types_but_not_limits(ioc: Recorder) -> None:
    ioc.level.set(50.0)  # outside the control limits: allowed from IOC code
    assert ioc.level.value == 50.0
    assert ioc.level.alarm.severity is Severity.MAJOR
    with pytest.raises(PutRefused):
        ioc.level.set("high")  # type: ignore[arg-type]
    ioc.level.value = 3  # the property setter is set()
    assert ioc.level.value == 3.0 and isinstance(ioc.level.value, float)
    assert ioc.events == [("commit", 50.0), ("commit", 3.0)]  # no validators, no hooks


def test_timestamps(ioc: Recorder) -> None:
    before = time.time_ns()
    ioc.level.set(2.0)
    assert before <= ioc.level.timestamp_ns <= time.time_ns()
    ioc.level.set(3.0, timestamp=1700000000.123456789)
    assert ioc.level.timestamp_ns // 1000 == 1700000000123456  # float seconds: us precision
    assert ioc.level.timestamp == pytest.approx(1700000000.123456789)


def test_limit_alarm_and_user_alarm(ioc: Recorder) -> None:
    ioc.level.set(8.5)
    assert (ioc.level.alarm.severity, ioc.level.alarm.status) == (Severity.MINOR, Status.HIGH)
    ioc.level.set_alarm(Severity.INVALID, Status.COMM, "device lost")
    assert (ioc.level.alarm.severity, ioc.level.alarm.status, ioc.level.alarm.message) == (
        Severity.INVALID, Status.COMM, "device lost")
    ioc.level.set(9.5)  # MAJOR from the limits is less severe than the user's INVALID
    assert (ioc.level.alarm.severity, ioc.level.alarm.status) == (Severity.INVALID, Status.COMM)
    ioc.level.set_alarm()  # clear: the limit alarm shows again
    assert (ioc.level.alarm.severity, ioc.level.alarm.status) == (Severity.MAJOR, Status.HIHI)
    ioc.level.set_alarm(Severity.MINOR, Status.STATE)
    assert ioc.level.alarm.status is Status.HIHI  # the worse one wins
    ioc.level.set(1.0)
    assert (ioc.level.alarm.status, ioc.level.alarm.message) == (
        Status.STATE, "STATE")  # default message: the status name


def test_subscribers(ioc: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[float] = []

    def broken(_: PV) -> None:
        raise RuntimeError("boom")

    ioc.fixed.subscribe(broken)
    unsubscribe = ioc.fixed.subscribe(lambda p: seen.append(p.value))
    with caplog.at_level(logging.ERROR):
        ioc.fixed.set(1.0)
    assert seen == [1.0]  # a broken subscriber does not stop the others
    assert "subscriber of R:FIXED failed" in caplog.text
    unsubscribe()
    ioc.fixed.set(2.0)
    assert seen == [1.0]


def test_array_values_are_read_only_copies(ioc: Recorder) -> None:
    source = np.array([1.0, 2.0])
    ioc.wave.set(source)
    source[0] = 4.0
    assert ioc.wave.value.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        ioc.wave.value[0] = 3.0


def test_index_only_for_enums(ioc: Recorder) -> None:
    with pytest.raises(TypeError, match="not an enum"):
        _ = ioc.level.index


class Clamping(IOC):
    speed = pv.float(0.0, limits=(-1, 1), writable=True, on_limit="clamp")


def test_clamped_put_stores_the_limit_and_restore_clamps_too() -> None:
    from podioc.autosave.values import check_restorable

    ioc = Clamping("C:")
    live = ioc.pvs["C:SPEED"]
    asyncio.run(live.put(7.0))
    assert live.value == 1.0
    asyncio.run(live.put(-0.5))
    assert live.value == -0.5
    assert check_restorable(live, -40.0) == -1.0
