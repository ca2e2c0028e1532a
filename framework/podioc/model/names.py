"""PV names a device class declares, and the check that no two collide.

Names are relative to the class. Under a vector whose count comes from an
``__init__`` argument, a name is a pattern (``CH[0-9]+:VOLTAGE``): it is
checked against literal names and equal patterns when the class is defined;
anything the patterns cannot settle is checked when the IOC is created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import IOCDefinitionError
from .members import DeviceSpec, VectorSpec
from .spec import PVSpec

Declared = PVSpec[Any] | DeviceSpec[Any] | VectorSpec[Any]


@dataclass(frozen=True)
class StaticName:
    """A PV name a class declares, relative to the class: literal, or a pattern
    (``regex``) when it lies under a vector whose count comes from ``__init__``."""

    text: str | None
    regex: str
    path: str
    declared_at: str

    def under(self, segment: str, label: str, declared_at: str, *, counted: bool = False
              ) -> StaticName:
        """This name below a member segment (``counted``: ``segment`` + a number)."""
        path = f"{label}.{self.path}"
        if counted:
            return StaticName(None, re.escape(segment) + r"[0-9]+:" + self.regex, path,
                              declared_at)
        sep = f"{segment}:" if segment else ""
        text = None if self.text is None else sep + self.text
        return StaticName(text, re.escape(sep) + self.regex, path, declared_at)


def checked_names(owner: str, declared: dict[str, Declared]) -> tuple[StaticName, ...]:
    """Every PV name below a class's declarations; a collision is an error naming both."""
    names: list[StaticName] = []
    for attr, obj in declared.items():
        if isinstance(obj, PVSpec):
            assert obj.name is not None
            names.append(StaticName(obj.name, re.escape(obj.name), attr, obj.declared_at))
        elif isinstance(obj, DeviceSpec):
            names.extend(n.under(obj.segment, attr, obj.declared_at)
                         for n in obj.cls.static_names)
        elif isinstance(obj.count, int):
            names.extend(n.under(f"{obj.stem}{k}", f"{attr}[{k}]", obj.declared_at)
                         for k in range(obj.start, obj.start + obj.count)
                         for n in obj.cls.static_names)
        else:
            names.extend(n.under(obj.stem, f"{attr}[n]", obj.declared_at, counted=True)
                         for n in obj.cls.static_names)
    literal: dict[str, StaticName] = {}
    patterns: list[StaticName] = []
    for name in names:
        earlier = None
        if name.text is not None:
            earlier = literal.get(name.text) or next(
                (p for p in patterns if re.fullmatch(p.regex, name.text)), None)
        else:
            earlier = next((p for p in patterns if p.regex == name.regex), None) or next(
                (n for n in literal.values() if re.fullmatch(name.regex, n.text or "")), None)
        if earlier is not None:
            shown = name.text or name.regex
            raise IOCDefinitionError(
                f"{name.declared_at}: PV name {shown!r} of {owner}.{name.path} is already "
                f"used by {owner}.{earlier.path} (declared at {earlier.declared_at}); "
                f"pass name=... to one")
        if name.text is not None:
            literal[name.text] = name
        else:
            patterns.append(name)
    return tuple(names)
