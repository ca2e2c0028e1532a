"""Metadata a client may change at run time, through record fields (``P:X.HIHI``).

The fields operators change on EPICS IOCs: ``DESC``, ``EGU``, ``HOPR``/``LOPR``
(display limits), the alarm limits ``HIHI``/``HIGH``/``LOW``/``LOLO`` and their
severities ``HHSV``/``HSV``/``LSV``/``LLSV``, the alarm hysteresis ``HYST``, and
the monitor deadbands ``MDEL``/``ADEL`` (negative: every change is posted). A
write gives the PV a new spec (:func:`with_field`); the live PV then re-evaluates
its alarm and tells its metadata subscribers
(:meth:`podioc.model.state.PV.set_field`). The control limits ``DRVH``/``DRVL``
stay read-only (they bound what clients may put).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import PutRefused
from .alarms import Alarm, Severity
from .records import display_limits, field_names, record_type
from .spec import PVSpec

#: Record fields a client may write, whatever the PV's own ``writable``.
WRITABLE_FIELDS = frozenset({"DESC", "EGU", "HOPR", "LOPR", "HIHI", "HIGH", "LOW", "LOLO",
                             "HHSV", "HSV", "LSV", "LLSV", "HYST", "MDEL", "ADEL"})
_DEADBANDS = {"MDEL": "deadband", "ADEL": "archive_deadband"}
_LIMITS = {"HIHI": "hihi", "HIGH": "high", "LOW": "low", "LOLO": "lolo"}
_SEVERITIES = {"HHSV": "hihi", "HSV": "high", "LSV": "low", "LLSV": "lolo"}
#: Sizes of DESC and EGU in EPICS records, in bytes with the terminating NUL.
MAX_DESC, MAX_EGU = 41, 16


def with_field(spec: PVSpec[Any], field: str, value: Any) -> PVSpec[Any]:
    """``spec`` with the record field ``field`` set to ``value`` (as a client
    wrote it: a string for DESC/EGU, a number or a severity name or index for
    the others); raises :class:`PutRefused` saying why not."""
    if field not in WRITABLE_FIELDS or field not in field_names(spec):
        raise PutRefused(f"{field} is read-only" if field in field_names(spec)
                         else f"record type {record_type(spec)} has no {field} field")
    if field == "DESC":
        return dataclasses.replace(spec, description=_text(value, MAX_DESC))
    if field == "EGU":
        return dataclasses.replace(spec, units=_text(value, MAX_EGU))
    if field in ("HOPR", "LOPR"):
        number = _number(value, allow_nan=False)
        lo, hi = display_limits(spec)
        lo, hi = (lo, number) if field == "HOPR" else (number, hi)
        if not lo < hi:
            raise PutRefused(f"{number:g} leaves the display range empty "
                             f"(LOPR {lo:g}, HOPR {hi:g}); LOPR must be below HOPR")
        return dataclasses.replace(spec, display_limits=(lo, hi))
    if field in _DEADBANDS:  # negative: every change is posted
        number = _number(value, allow_nan=False)
        changes: dict[str, Any] = {_DEADBANDS[field]: None if number < 0 else number}
        return dataclasses.replace(spec, **changes)
    alarm = spec.alarm or Alarm()
    if field in _LIMITS:
        number = _number(value, allow_nan=True)
        changes = {_LIMITS[field]: None if math.isnan(number) else number}
        alarm = dataclasses.replace(alarm, **changes)
    elif field in _SEVERITIES:
        changes = {f"{_SEVERITIES[field]}_severity": _severity(value)}
        alarm = dataclasses.replace(alarm, **changes)
    elif field == "HYST":
        alarm = dataclasses.replace(alarm, hysteresis=_number(value, allow_nan=False))
    else:  # pragma: no cover - every writable field is handled above
        raise PutRefused(f"{field} is read-only")
    problems = alarm.problems()
    if problems:
        raise PutRefused("; ".join(problems))
    return dataclasses.replace(spec, alarm=alarm)


def _text(value: Any, limit: int) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text.encode()) >= limit:
        raise PutRefused(f"at most {limit - 1} bytes, got {len(text.encode())}")
    return text


def _number(value: Any, *, allow_nan: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PutRefused(f"{value!r} is not a number") from None
    if math.isinf(number) or (math.isnan(number) and not allow_nan):
        raise PutRefused(f"{number} is not a finite number")
    return number


def _severity(value: Any) -> Severity:
    if isinstance(value, str) and not value.strip().isdigit():
        try:
            return Severity[value.strip()]
        except KeyError:
            raise PutRefused(f"{value!r} is not one of "
                             f"{[s.name for s in Severity]}") from None
    try:
        return Severity(int(value))
    except (TypeError, ValueError):
        raise PutRefused(f"{value!r} is not a severity 0..3") from None


def field_state(spec: PVSpec[Any], field: str) -> Any:
    """A writable field's value as autosave stores it: text, a number (NaN for an
    alarm limit that is off) or a severity name; :func:`with_field` takes it back."""
    if field == "DESC":
        return spec.description
    if field == "EGU":
        return spec.units
    if field in ("HOPR", "LOPR"):
        lo, hi = display_limits(spec)
        return float(hi if field == "HOPR" else lo)
    if field in _DEADBANDS:
        band = getattr(spec, _DEADBANDS[field])
        return -1.0 if band is None else float(band)
    alarm = spec.alarm or Alarm()
    if field in _LIMITS:
        limit = getattr(alarm, _LIMITS[field])
        return math.nan if limit is None else float(limit)
    if field == "HYST":
        return float(alarm.hysteresis)
    return Severity(getattr(alarm, f"{_SEVERITIES[field]}_severity")).name


def changed_fields(declared: PVSpec[Any], current: PVSpec[Any]) -> dict[str, Any]:
    """The writable fields whose value differs from the declaration, by field name."""
    if current is declared:
        return {}
    out = {}
    for field in sorted(WRITABLE_FIELDS & set(field_names(current))):
        now, then = field_state(current, field), field_state(declared, field)
        if now != then and not (now != now and then != then):  # NaN == NaN here
            out[field] = now
    return out
