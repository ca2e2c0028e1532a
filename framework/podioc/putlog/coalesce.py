"""The burst filter: puts to one PV by one client within a window become one line.

caPutLog merges consecutive puts to the same field until a put to another
field or 5 s of silence. podioc groups by (PV, client address, user,
protocol, outcome) instead of by "consecutive", so a client alternating
between two PVs is coalesced too, and a group closes ``window`` seconds after
its first put, so a steady stream still gives a line per window. Refused puts
are grouped by reason as well, numbers masked (:func:`reason_kind`): "500 is
outside the limits" and "501 is outside the limits" share a line, "no write
access" gets its own. A group keeps the first old value, the last new value,
the count, and min/max of numeric new values. Pure logic: the caller passes
the clock.
"""

from __future__ import annotations

import re
from typing import Any

#: (pv, host, user, protocol, accepted, reason kind)
Key = tuple[str, str, str, str, bool, str]

_NUMBER = re.compile(r"\d[\d.eE+-]*")


def reason_kind(reason: str) -> str:
    """What refusals that differ only in numbers have in common (each number a ``#``)."""
    return _NUMBER.sub("#", reason)


class Group:
    """One log line in the making: one put, or several coalesced."""

    __slots__ = ("count", "deadline", "hi", "key", "lo", "new", "old", "reason", "time_ns")

    def __init__(self, key: Key, old: Any, new: Any, reason: str, time_ns: int,
                 deadline: float) -> None:
        self.key = key
        self.old = old
        self.new = new
        self.reason = reason
        self.time_ns = time_ns  # of the last put
        self.deadline = deadline
        self.count = 1
        self.lo: Any = new if _is_number(new) else None
        self.hi: Any = self.lo

    def add(self, new: Any, reason: str, time_ns: int) -> None:
        """Merge one more put: its new value, reason and time win."""
        self.new = new
        self.reason = reason
        self.time_ns = time_ns
        self.count += 1
        if self.lo is not None and _is_number(new):
            if new < self.lo:
                self.lo = new
            elif new > self.hi:
                self.hi = new
        else:  # a non-number in the burst (or first): no min/max for this line
            self.lo = self.hi = None

    @property
    def pv(self) -> str:
        return self.key[0]


def _is_number(value: Any) -> bool:
    kind = type(value)
    return (kind is float or kind is int) and value == value  # not bool, not NaN


class Coalescer:
    """Open groups, oldest first; at most ``max_open`` (the oldest closes early)."""

    def __init__(self, window: float, max_open: int = 10_000) -> None:
        self.window = window
        self.max_open = max_open
        self._open: dict[Key, Group] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, key: Key, old: Any, new: Any, reason: str, time_ns: int,
            now: float) -> Group | None:
        """Add one put at monotonic time ``now``; returns a group that must be written
        now (the window is 0, or the oldest group was closed to make room)."""
        group = self._open.get(key)
        if group is not None:
            group.add(new, reason, time_ns)
            return None
        group = Group(key, old, new, reason, time_ns, now + self.window)
        if self.window <= 0:
            return group
        self._open[key] = group
        if len(self._open) > self.max_open:
            oldest = next(iter(self._open))
            return self._open.pop(oldest)
        return None

    def due(self, now: float) -> list[Group]:
        """Close and return the groups whose window has ended, oldest first."""
        out: list[Group] = []
        groups = self._open
        while groups:
            key, group = next(iter(groups.items()))
            if group.deadline > now:
                break
            del groups[key]
            out.append(group)
        return out

    def next_deadline(self) -> float | None:
        """When the oldest open group closes (None: no group is open)."""
        for group in self._open.values():
            return group.deadline
        return None

    def drain(self) -> list[Group]:
        """Close every open group (at shutdown), oldest first."""
        out = list(self._open.values())
        self._open.clear()
        return out
