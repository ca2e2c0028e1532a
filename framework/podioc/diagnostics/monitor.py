"""What ``podioc monitor`` shows, without the terminal: PVs found from an IOC's PVI PV over
PVA, one row per PV kept up to date from monitors, and puts.

:mod:`.monitor_view` draws the rows (textual).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from p4p import Value

from ..errors import PodiocError

#: Seconds over which the update rate is counted.
RATE_WINDOW = 5.0
SEVERITIES = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")


async def discover(ctx: Any, prefix: str, pvi: str = "PVI",
                   timeout: float = 5.0) -> dict[str, bool]:
    """PV name -> writable, for every PV the IOC's PVI tree lists (``ctx``: a p4p asyncio
    client Context returning raw Values). Raises PodiocError if the PVI PV is not found."""
    top = prefix + pvi
    try:
        return await _walk(ctx, top, timeout, set())
    except TimeoutError:
        raise PodiocError(
            f"no answer from the PVI PV {top} within {timeout:g} s: is an IOC with prefix "
            f"{prefix!r} running with PVI on, and can this host reach it (EPICS_PVA_ADDR_LIST, "
            "EPICS_PVA_SERVER_PORT, EPICS_PVA_BROADCAST_PORT)?") from None


async def _walk(ctx: Any, name: str, timeout: float, seen: set[str]) -> dict[str, bool]:
    seen.add(name)
    value = await asyncio.wait_for(ctx.get(name), timeout)
    found: dict[str, bool] = {}
    children = []
    for roles in value.todict()["value"].values():
        if "d" in roles and roles["d"] not in seen:
            children.append(roles["d"])
        for role in ("r", "rw", "w"):
            if role in roles:
                found[roles[role]] = found.get(roles[role], False) or role != "r"
    for sub in await asyncio.gather(*(_walk(ctx, child, timeout, seen) for child in children)):
        found.update(sub)
    return found


def format_value(value: Any) -> str:
    """The ``value`` field of a raw Normative Type Value as text."""
    inner = value["value"]
    if isinstance(inner, Value):  # NTEnum: value is a structure {index, choices}
        choices = list(inner["choices"])
        index = int(inner["index"])
        return choices[index] if 0 <= index < len(choices) else str(index)
    if hasattr(inner, "__len__") and not isinstance(inner, str):
        head = ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in list(inner[:4]))
        return f"[{len(inner)}] {head}{', ...' if len(inner) > 4 else ''}"
    if isinstance(inner, float):
        try:
            precision = int(value["display.precision"])
        except (KeyError, TypeError, ValueError):
            precision = 3
        return f"{inner:.{max(0, min(precision, 12))}f}"
    return str(inner)


@dataclass
class Row:
    """One PV as the monitor shows it."""

    name: str
    writable: bool
    value: str = ""
    units: str = ""
    severity: str = ""
    timestamp: float = 0.0
    choices: list[str] = field(default_factory=list)
    kind: str = ""  # "enum", "float", "int", "str", "array"
    updates: deque[float] = field(default_factory=deque)

    def update(self, value: Any) -> None:
        """Take a monitor update (a raw Value)."""
        self.value = format_value(value)
        inner = value["value"]
        if isinstance(inner, Value):
            self.kind, self.choices = "enum", list(inner["choices"])
        elif isinstance(inner, bool | int):
            self.kind = "int"
        elif isinstance(inner, float):
            self.kind = "float"
        elif isinstance(inner, str):
            self.kind = "str"
        else:
            self.kind = "array"
        with contextlib.suppress(KeyError, TypeError):
            self.units = str(value["display.units"])
        severity = int(value["alarm.severity"])
        self.severity = SEVERITIES[severity] if 0 <= severity < 4 else str(severity)
        self.timestamp = (int(value["timeStamp.secondsPastEpoch"])
                          + int(value["timeStamp.nanoseconds"]) * 1e-9)
        now = time.monotonic()
        self.updates.append(now)
        self.prune(now)

    def prune(self, now: float) -> None:
        while self.updates and self.updates[0] < now - RATE_WINDOW:
            self.updates.popleft()

    @property
    def rate(self) -> float:
        """Updates per second over the last :data:`RATE_WINDOW` seconds."""
        self.prune(time.monotonic())
        return len(self.updates) / RATE_WINDOW

    def parse(self, text: str) -> Any:
        """The value to put for what the user typed (a state name or number for an enum);
        raises ValueError with a message the user can act on."""
        text = text.strip()
        if self.kind == "enum":
            if text in self.choices:
                return {"value.index": self.choices.index(text)}
            if text.isdigit() and int(text) < len(self.choices):
                return {"value.index": int(text)}
            raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
        if self.kind in ("float", "int"):
            try:
                number: float = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a number") from None
            return {"value": number}
        if self.kind == "array":
            raise ValueError("putting arrays is not supported here; use pvput")
        return {"value": text}
