"""One put-log line: JSON with caPutLog's field names where it has one.

caPutLog's JSON logger writes ``date``, ``time``, ``host``, ``user``, ``pv``,
``new``, ``new-size`` (arrays), ``old``, ``old-size``, ``min`` and ``max``
(bursts); NaN and infinities as the strings ``"Nan"``, ``"Infinity"`` and
``"-Infinity"``. podioc adds ``protocol`` (``ca``/``pva``), ``outcome``
(``accepted``/``refused``), ``reason`` (refused puts: the message the client
got) and ``count`` (puts coalesced into the line, when more than one). Time
is UTC, that of the last put of the line. ``host`` is the client's IP address
as the server sees it (what access rules match), not a name it claims.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .coalesce import Group

#: Array values are logged up to this many elements (``new-size`` gives the length).
MAX_ELEMENTS = 50
#: Strings are cut to this many characters.
MAX_CHARS = 400

_SPECIAL = {math.inf: "Infinity", -math.inf: "-Infinity"}
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_last_second: tuple[int, str, str] = (-1, "", "")  # (seconds, date, time), swapped whole


def _date_time(time_ns: int) -> tuple[str, str]:
    """caPutLog's ``date`` and ``time`` (UTC, milliseconds); one strftime per second."""
    global _last_second
    seconds, ns = divmod(time_ns, 1_000_000_000)
    cached = _last_second
    if cached[0] != seconds:
        stamp = time.gmtime(seconds)
        cached = (seconds, time.strftime("%Y-%m-%d", stamp), time.strftime("%H:%M:%S", stamp))
        _last_second = cached
    return cached[1], f"{cached[2]}.{ns // 1_000_000:03d}"


def scalar(value: Any) -> Any:
    """A JSON-ready scalar: NaN/inf as caPutLog writes them, bytes decoded, numpy unwrapped."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if value != value:
            return "Nan"
        return _SPECIAL.get(value, value)
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, bytes | bytearray):
        value = bytes(value).rstrip(b"\0").decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "..."


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray | list | tuple)


def _array(value: Sequence[Any] | np.ndarray[Any, Any]) -> list[Any]:
    head = value[:MAX_ELEMENTS]
    items = head.tolist() if isinstance(head, np.ndarray) else list(head)
    return [scalar(v) for v in items]


def fields(group: Group) -> dict[str, Any]:
    """The line's fields, in caPutLog's order, then podioc's."""
    pv, host, user, protocol, accepted, _ = group.key
    date, clock = _date_time(group.time_ns)
    out: dict[str, Any] = {"date": date, "time": clock, "host": host, "user": user, "pv": pv}
    for name, value in (("new", group.new), ("old", group.old)):
        if _is_array(value):
            out[name] = _array(value)
            out[f"{name}-size"] = len(value)
        else:
            out[name] = scalar(value)
    if group.count > 1:
        if group.lo is not None:
            out["min"], out["max"] = scalar(group.lo), scalar(group.hi)
        out["count"] = group.count
    out["protocol"] = protocol
    out["outcome"] = "accepted" if accepted else "refused"
    if not accepted:
        out["reason"] = group.reason
    return out


def line(group: Group) -> str:
    """The JSON line (no newline; non-ASCII text escaped, whatever the locale)."""
    return _ENCODER.encode(fields(group))


def dropped_line(count: int, time_ns: int) -> str:
    """The line saying that ``count`` lines were dropped (the queue was full)."""
    date, clock = _date_time(time_ns)
    return _ENCODER.encode({"date": date, "time": clock, "dropped": count,
                            "reason": "put log queue full: lines dropped"})
