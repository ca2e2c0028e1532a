"""CA event masks as EPICS base honours them, seen with ``camonitor -m``.

An alarm-only subscriber (``-m a``) gets the first value and then only alarm
changes; a value subscriber (``-m v``) every value change.
"""

from __future__ import annotations

from harness import IocProcess
from harness.epicsbase import epics_base

WATCH = 2.5  # s; TICKS changes every 0.2 s


def updates(ioc: IocProcess, mask: str, pv: str) -> list[str]:
    result = epics_base().monitor("camonitor", "-m", mask, ioc.pv(pv), seconds=WATCH,
                                  target=ioc)
    return [line for line in result.stdout.splitlines() if line.startswith(ioc.pv(pv))]


def test_alarm_mask_ignores_value_changes(allkinds: IocProcess) -> None:
    lines = updates(allkinds, "a", "TICKS")
    assert len(lines) == 1, lines  # the first value only: the alarm never changes


def test_value_mask_sees_value_changes(allkinds: IocProcess) -> None:
    assert len(updates(allkinds, "v", "TICKS")) >= 5


def test_log_mask_sees_value_changes(allkinds: IocProcess) -> None:
    assert len(updates(allkinds, "l", "TICKS")) >= 5  # no archive deadband: as DBE_VALUE
