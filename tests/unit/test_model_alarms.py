"""Alarm-limit evaluation (podioc.model.alarms), with EPICS semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from podioc import Alarm, Severity, Status
from podioc.model.alarms import NO_ALARM, AlarmState

FULL = Alarm(lolo=-10, low=-5, high=5, hihi=10)


@pytest.mark.parametrize(("value", "severity", "status"), [
    (0.0, Severity.NO_ALARM, Status.NO_ALARM),
    (4.999, Severity.NO_ALARM, Status.NO_ALARM),
    (5.0, Severity.MINOR, Status.HIGH),  # limits are inclusive
    (9.999, Severity.MINOR, Status.HIGH),
    (10.0, Severity.MAJOR, Status.HIHI),
    (1e300, Severity.MAJOR, Status.HIHI),
    (-5.0, Severity.MINOR, Status.LOW),
    (-10.0, Severity.MAJOR, Status.LOLO),
    (-math.inf, Severity.MAJOR, Status.LOLO),
    (7, Severity.MINOR, Status.HIGH),  # ints too
])
def test_scalar_limits(value: float, severity: Severity, status: Status) -> None:
    state = FULL.evaluate(value)
    assert (state.severity, state.status) == (severity, status)
    assert state.message == ("" if severity is Severity.NO_ALARM else status.name)


def test_nan_is_invalid_udf() -> None:
    state = FULL.evaluate(math.nan)
    assert (state.severity, state.status, state.message) == (
        Severity.INVALID, Status.UDF, "value is NaN")


def test_disabled_limits() -> None:
    high_only = Alarm(high=100)
    assert high_only.evaluate(-1e9) == NO_ALARM
    assert high_only.evaluate(100).status is Status.HIGH
    assert Alarm().evaluate(1e9) == NO_ALARM


def test_zero_is_a_real_limit() -> None:
    """A limit of 0 is enabled (only None disables it)."""
    state = Alarm(high=0.0).evaluate(0.0)
    assert (state.severity, state.status) == (Severity.MINOR, Status.HIGH)
    assert Alarm(lolo=0.0).evaluate(-0.5).status is Status.LOLO


def test_custom_severities() -> None:
    alarm = Alarm(high=5, hihi=10, high_severity=Severity.MAJOR, hihi_severity=Severity.INVALID)
    assert alarm.evaluate(6).severity is Severity.MAJOR
    assert alarm.evaluate(11).severity is Severity.INVALID


def test_no_alarm_severity_disables_a_limit() -> None:
    """As in EPICS, a limit whose severity is NO_ALARM raises nothing (the next applies)."""
    alarm = Alarm(high=5, hihi=10, hihi_severity=Severity.NO_ALARM)
    state = alarm.evaluate(20)
    assert (state.severity, state.status) == (Severity.MINOR, Status.HIGH)


def test_arrays_take_the_worst_element() -> None:
    assert FULL.evaluate(np.array([0.0, 6.0, -1.0])).status is Status.HIGH
    assert FULL.evaluate(np.array([6.0, -11.0])).status is Status.LOLO
    assert FULL.evaluate(np.array([11.0, -11.0])).severity is Severity.MAJOR
    assert FULL.evaluate(np.array([], dtype=float)) == NO_ALARM
    assert FULL.evaluate(np.array([1, 2, 3], dtype=np.int32)) == NO_ALARM


@pytest.mark.parametrize(("alarm", "problem"), [
    (Alarm(lolo=0, low=-1), "alarm limit lolo=0 is above low=-1"),
    (Alarm(high=10, hihi=5), "alarm limit high=10 is above hihi=5"),
    (Alarm(low=3, high=2), "alarm limit low=3 is above high=2"),
    (Alarm(lolo=5, hihi=1), "alarm limit lolo=5 is above hihi=1"),
])
def test_contradictory_limits(alarm: Alarm, problem: str) -> None:
    assert problem in alarm.problems()


def test_consistent_limits() -> None:
    assert FULL.problems() == []
    assert Alarm(low=1, high=1).problems() == []  # equal limits are allowed
    assert Alarm().problems() == []


def test_alarm_state_defaults() -> None:
    assert AlarmState() == NO_ALARM
    assert (NO_ALARM.severity, NO_ALARM.status, NO_ALARM.message) == (
        Severity.NO_ALARM, Status.NO_ALARM, "")
    assert [int(s) for s in Severity] == [0, 1, 2, 3]
    assert (Status.HIHI, Status.HIGH, Status.LOLO, Status.LOW, Status.COMM, Status.UDF) == (
        3, 4, 5, 6, 9, 17)


def test_hysteresis_holds_an_alarm_as_an_ai_record_does() -> None:
    """EPICS aiRecord checkAlarms: an alarm raised by a limit holds while the value
    stays within HYST of it (LALM), and clears once it is more than HYST inside."""
    from podioc import IOC, pv

    class One(IOC):
        x = pv.float(0.0, name="X", writable=True,
                     alarm=Alarm(high=5.0, hihi=10.0, hysteresis=2.0))

    x = One("H:").x
    seen = []
    for value in (10.0, 9.0, 8.0, 7.9, 5.0, 3.5, 3.0, 2.9, 10.0, 12.0, 7.0):
        x.set(value)
        seen.append(x.alarm.status.name)
    assert seen == ["HIHI", "HIHI", "HIHI", "HIGH", "HIGH", "HIGH", "HIGH", "NO_ALARM",
                    "HIHI", "HIHI", "HIGH"]


def test_negative_hysteresis_is_a_problem() -> None:
    assert Alarm(hihi=1.0, hysteresis=-1.0).problems() == ["alarm hysteresis -1.0 is negative"]
