"""Alarm severities, statuses and limit evaluation (EPICS semantics)."""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass
from typing import Any


class Severity(enum.IntEnum):
    """EPICS alarm severity, identical on CA and PVA."""

    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2
    INVALID = 3


class Status(enum.IntEnum):
    """EPICS (CA) alarm status codes, as in epicsAlarmCondition."""

    NO_ALARM = 0
    READ = 1
    WRITE = 2
    HIHI = 3
    HIGH = 4
    LOLO = 5
    LOW = 6
    STATE = 7
    COS = 8
    COMM = 9
    TIMEOUT = 10
    HWLIMIT = 11
    CALC = 12
    SCAN = 13
    LINK = 14
    SOFT = 15
    BAD_SUB = 16
    UDF = 17
    DISABLE = 18
    SIMM = 19
    READ_ACCESS = 20
    WRITE_ACCESS = 21


@dataclass(frozen=True, slots=True)
class AlarmState:
    """The alarm part of a PV's state: severity, status and a message."""

    severity: Severity = Severity.NO_ALARM
    status: Status = Status.NO_ALARM
    message: str = ""


NO_ALARM = AlarmState()


@dataclass(frozen=True)
class Alarm:
    """Alarm limits of a numeric PV, with EPICS's default severities.

    A limit left as ``None`` is disabled. ``value >= hihi`` gives HIHI,
    ``value <= lolo`` LOLO, then HIGH and LOW likewise. For arrays the most
    severe element decides. ``hysteresis`` is EPICS's HYST: an alarm raised by
    a limit stays until the value is more than that inside the limit (scalars).
    """

    lolo: float | None = None
    low: float | None = None
    high: float | None = None
    hihi: float | None = None
    lolo_severity: Severity = Severity.MAJOR
    low_severity: Severity = Severity.MINOR
    high_severity: Severity = Severity.MINOR
    hihi_severity: Severity = Severity.MAJOR
    hysteresis: float = 0.0

    def problems(self) -> list[str]:
        """Return contradictions between the limits (empty if consistent)."""
        out = []
        if not self.hysteresis >= 0:
            out.append(f"alarm hysteresis {self.hysteresis} is negative")
        ordered = [("lolo", self.lolo), ("low", self.low), ("high", self.high),
                   ("hihi", self.hihi)]
        present = [(n, v) for n, v in ordered if v is not None]
        for (n1, v1), (n2, v2) in itertools.pairwise(present):
            if v1 > v2:
                out.append(f"alarm limit {n1}={v1} is above {n2}={v2}")
        return out

    def evaluate(self, value: Any, last: float | None = None) -> AlarmState:
        """Alarm state for a scalar or the worst element of an array. ``last``: the
        limit that raised the alarm last time (EPICS's LALM, see :meth:`limit_of`),
        whose alarm holds within :attr:`hysteresis` of it."""
        if isinstance(value, float) and math.isnan(value):
            return AlarmState(Severity.INVALID, Status.UDF, "value is NaN")
        try:
            import numpy as np

            if isinstance(value, np.ndarray):
                if value.size == 0:
                    return NO_ALARM
                hi, lo = float(value.max()), float(value.min())
                a, b = self._one(hi), self._one(lo)
                return a if a.severity >= b.severity else b
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        return self._one(float(value), last)

    def limit_of(self, state: AlarmState) -> float | None:
        """The limit that raised ``state`` (None: no limit alarm), to pass as ``last``."""
        return {Status.HIHI: self.hihi, Status.HIGH: self.high, Status.LOW: self.low,
                Status.LOLO: self.lolo}.get(state.status)

    def _one(self, v: float, last: float | None = None) -> AlarmState:
        hyst = self.hysteresis
        checks = (
            (self.hihi, 1.0, self.hihi_severity, Status.HIHI),
            (self.lolo, -1.0, self.lolo_severity, Status.LOLO),
            (self.high, 1.0, self.high_severity, Status.HIGH),
            (self.low, -1.0, self.low_severity, Status.LOW),
        )
        for limit, side, severity, status in checks:
            if limit is None or severity <= Severity.NO_ALARM:
                continue
            edge = limit - side * hyst if last == limit else limit
            if (v >= edge) if side > 0 else (v <= edge):
                return AlarmState(severity, status, status.name)
        return NO_ALARM
