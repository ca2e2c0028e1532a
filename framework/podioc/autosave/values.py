"""PV values as the autosave file stores them, and the checks a restored value passes."""

from __future__ import annotations

import time
from typing import Any

from ..errors import PutRefused
from ..model import PV, Kind


def saveable(live: PV) -> Any:
    """The PV's value as the file stores it (JSON-able; enums by state name)."""
    kind, raw = live.spec.kind, live.raw
    if kind is Kind.ENUM:
        return live.spec.choices[raw]
    if kind is Kind.ARRAY:
        return raw.tolist()
    if kind is Kind.BOOL:
        return bool(raw)
    if kind is Kind.FLOAT:
        return float(raw)
    if kind is Kind.INT:
        return int(raw)
    return str(raw)


def check_restorable(live: PV, saved: Any) -> Any:
    """The value to restore, by the type and limit rules of a put (clamped or
    refused); raises PutRefused."""
    spec = live.spec
    value = spec.coerce(saved)
    if spec.on_limit == "clamp":
        return spec.clamped(value)
    if not spec.within_limits(value):
        lo, hi = spec.limits or (0.0, 0.0)
        raise PutRefused(f"outside the limits {lo:g} .. {hi:g}")
    return value


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
