"""Sub-device declarations (``pv.device``, ``pv.vector``) and :class:`DeviceVector`.

Like a :class:`~podioc.model.spec.PVSpec`, a declaration is a descriptor: on
the class it is the declaration, on an instance the live sub-device (or the
vector of them).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar, overload

from ..errors import IOCDefinitionError

if TYPE_CHECKING:
    from .device import Device

D = TypeVar("D", bound="Device")

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_\-.\[\]<>;{}]*$")


@dataclass(frozen=True, eq=False)
class DeviceSpec(Generic[D]):
    """One sub-device of class ``cls``, declared with ``pv.device(cls)``."""

    cls: type[D]
    name: str | None
    declared_at: str
    attr: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_member_class(self.cls, self.declared_at, "pv.device")
        check_segment(self.name, self.declared_at, allow_empty=True)

    def __set_name__(self, owner: type, attr: str) -> None:
        object.__setattr__(self, "attr", attr)

    @property
    def segment(self) -> str:
        """The name segment: ``name`` or the attribute in upper case."""
        return self.attr.upper() if self.name is None else self.name

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> DeviceSpec[D]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> D: ...

    def __get__(self, instance: object, owner: type[Any] | None = None) -> DeviceSpec[D] | D:
        if instance is None:
            return self
        member: D = instance.member(self.attr)  # type: ignore[attr-defined]
        return member

    def __set__(self, instance: object, value: Never) -> None:  # mypy: no assignment
        raise AttributeError(f"sub-device attribute {self.attr!r} cannot be replaced")


@dataclass(frozen=True, eq=False)
class VectorSpec(Generic[D]):
    """``count`` sub-devices of class ``cls``, declared with ``pv.vector(cls, count)``."""

    cls: type[D]
    count: int | str
    name: str | None
    start: int
    declared_at: str
    attr: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_member_class(self.cls, self.declared_at, "pv.vector")
        check_segment(self.name, self.declared_at, allow_empty=False)
        if isinstance(self.count, bool) or not isinstance(self.count, int | str) or (
                isinstance(self.count, int) and self.count < 0):
            raise IOCDefinitionError(
                f"{self.declared_at}: pv.vector count={self.count!r} must be a number >= 0 "
                f"or the name of an __init__ argument")
        if isinstance(self.start, bool) or not isinstance(self.start, int) or self.start < 0:
            raise IOCDefinitionError(f"{self.declared_at}: pv.vector start={self.start!r} "
                                     f"must be a whole number >= 0")

    def __set_name__(self, owner: type, attr: str) -> None:
        object.__setattr__(self, "attr", attr)

    @property
    def stem(self) -> str:
        """The name segment before the member number: ``name`` or the attribute in
        upper case."""
        return self.attr.upper() if self.name is None else self.name

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> VectorSpec[D]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> DeviceVector[D]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None
                ) -> VectorSpec[D] | DeviceVector[D]:
        if instance is None:
            return self
        member: DeviceVector[D] = instance.member(self.attr)  # type: ignore[attr-defined]
        return member

    def __set__(self, instance: object, value: Never) -> None:  # mypy: no assignment
        raise AttributeError(f"sub-device vector attribute {self.attr!r} cannot be replaced")


class DeviceVector(Mapping[int, D]):
    """Identical sub-devices by number: ``ioc.ch[3]`` is member 3 (PVs ``...CH3:...``).

    A read-only mapping ``number -> device``: ``len``, ``in``, ``.items()``,
    ``.values()``; iterating gives the numbers in order.
    """

    def __init__(self, members: Mapping[int, D], stem: str) -> None:
        self._members = dict(sorted(members.items()))
        self.stem = stem
        #: The attribute path of the vector, e.g. ``psu.ch`` (set when attached).
        self.path = ""

    def __getitem__(self, number: int) -> D:
        try:
            return self._members[number]
        except KeyError:
            have = ", ".join(map(str, self._members)) or "none"
            raise KeyError(f"{self.path or self.stem} has no member {number!r} "
                           f"(members: {have})") from None

    def __iter__(self) -> Iterator[int]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"<DeviceVector {self.path or self.stem} of {len(self)}>"


def check_member_class(cls: Any, declared_at: str, what: str) -> None:
    """Fail unless ``cls`` is a Device class that can be made without arguments."""
    from .device import Device  # imported here: device.py imports this module
    from .ioc import IOC

    if not (isinstance(cls, type) and issubclass(cls, Device)):
        raise IOCDefinitionError(f"{declared_at}: {what}({cls!r}): expected a Device subclass")

    if issubclass(cls, IOC):
        raise IOCDefinitionError(f"{declared_at}: {what}({cls.__name__}): an IOC cannot be a "
                                 f"sub-device; make {cls.__name__} a Device")
    required = [p.name for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise IOCDefinitionError(
            f"{declared_at}: {what}({cls.__name__}): {cls.__name__}() needs "
            f"{', '.join(required)}; declared sub-devices are made without arguments: "
            f"give them defaults, or build the device in __init__ and attach it with "
            f"self.add_device(...) / self.add_vector(...)")


def check_segment(name: str | None, declared_at: str, *, allow_empty: bool) -> None:
    """Fail unless ``name`` can be a PV name segment (no ':': podioc adds it)."""
    if name is None:
        return
    if not isinstance(name, str) or not _SEGMENT_RE.match(name) or (
            not name and not allow_empty):
        raise IOCDefinitionError(
            f"{declared_at}: name={name!r} is not a usable name segment: use letters, "
            f"digits and _-.[]<>;{{}} (podioc adds the ':' after it)"
            + ("" if allow_empty else "; a vector needs a non-empty name"))
