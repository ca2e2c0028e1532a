"""PV specifications: what a PV is, declared once on an IOC or device class.

``PVSpec[T]`` is generic in the Python type of the value (``float``, ``int``,
``bool``, ``str`` or ``numpy.ndarray``); the ``pv`` constructors
(:mod:`.factory`) return the right ``T``, so that on an instance
``self.setpoint`` is a ``PV[float]``.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Never, overload

import numpy as np
from typing_extensions import TypeVar

from ..errors import IOCDefinitionError, PutRefused
from . import kinds
from .alarms import Alarm
from .hooks import HOOK_ATTR, check_async_method
from .kinds import Kind

if TYPE_CHECKING:
    from .state import PV

#: The Python type of a PV's value; a bare ``PVSpec`` or ``PV`` means ``Any``.
T = TypeVar("T", default=Any)
#: The class a hook is defined in (its ``self``).
S = TypeVar("S")

_NAME_RE = re.compile(r"^[A-Za-z0-9_\-:.\[\]<>;{}]+$")
#: CA's DBR_CTRL units field holds 8 bytes including the NUL.
MAX_UNITS = 7
#: Default state names of a bool PV (like a bo record's ZNAM/ONAM).
BOOL_CHOICES = ("Off", "On")

Limits = tuple[builtins.float, builtins.float]
#: What a put outside the control limits does: refused (the default), or stored
#: clamped to the nearest limit, as an ao record with DRVH/DRVL does.
OnLimit = Literal["refuse", "clamp"]


@dataclass(frozen=True, eq=False)
class PVSpec(Generic[T]):
    """One PV of an IOC or device class. Create it with ``pv.float(...)`` and friends.

    Used as a class attribute, it is a descriptor: on the class it is the spec,
    on an instance the live :class:`~podioc.model.state.PV` (``PV[T]``).
    """

    kind: Kind
    initial: Any
    name: str | None = None
    description: str = ""
    units: str = ""
    precision: int = 0
    display_limits: Limits | None = None
    limits: Limits | None = None
    alarm: Alarm | None = None
    choices: tuple[str, ...] = ()
    dtype: str = "float64"
    max_length: int = 1
    writable: bool = False
    autosave: bool = False
    on_limit: OnLimit = "refuse"
    deadband: float | None = None
    archive_deadband: float | None = None
    declared_at: str = ""
    attr: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise IOCDefinitionError(f"{self.declared_at}: PV {self.name or ''}: "
                                     + "; ".join(problems))

    # -- checks at definition ---------------------------------------------
    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.name is not None and not _NAME_RE.match(self.name):
            out.append(f"name {self.name!r} has characters not allowed in a PV name")
        if len(self.units.encode()) > MAX_UNITS:
            out.append(f"units {self.units!r} is longer than CA's {MAX_UNITS} bytes")
        if self.precision < 0 or self.precision > 17:
            out.append(f"precision {self.precision} must be 0..17")
        for label, lim in (("limits", self.limits), ("display_limits", self.display_limits)):
            if lim is not None and not (len(lim) == 2 and lim[0] < lim[1]):
                out.append(f"{label}={lim!r} must be (low, high) with low < high")
        if self.on_limit not in ("refuse", "clamp"):
            out.append(f"on_limit={self.on_limit!r} must be 'refuse' or 'clamp'")
        elif self.on_limit == "clamp" and self.limits is None:
            out.append("on_limit='clamp' needs limits=(low, high) to clamp to")
        for label, band in (("deadband", self.deadband),
                            ("archive_deadband", self.archive_deadband)):
            if band is not None and (self.kind not in (Kind.FLOAT, Kind.INT)
                                     or not band >= 0):
                out.append(f"{label}={band!r}: a number >= 0, for float and int PVs only")
        if self.alarm is not None:
            if self.kind not in (Kind.FLOAT, Kind.INT, Kind.ARRAY):
                out.append(f"alarm limits apply to numeric PVs, not {self.kind.value}")
            out.extend(self.alarm.problems())
        if self.kind is Kind.ENUM:
            out.extend(_choice_problems(self.choices))
        if self.kind is Kind.BOOL:  # served as a two-state enum: the same rules apply
            out.extend(_choice_problems(self.choices))
            if len(self.choices) != 2:
                out.append(f"a bool needs 2 states, got {len(self.choices)}")
        if self.kind is Kind.ARRAY:
            if self.dtype not in kinds.ARRAY_DTYPES:
                out.append(f"dtype {self.dtype!r} is not one of {kinds.ARRAY_DTYPES}")
            if self.max_length < 1:
                out.append(f"max_length {self.max_length} must be at least 1")
        if not out:
            try:
                value = self.coerce(self.initial)
            except PutRefused as exc:
                out.append(f"initial value {self.initial!r}: {exc}")
            else:
                if self.limits is not None and not self.within_limits(value):
                    out.append(f"initial value {self.initial!r} is outside limits {self.limits}")
        return out

    # -- value rules -------------------------------------------------------
    def coerce(self, value: Any) -> Any:
        """Convert ``value`` to this PV's stored type or raise :class:`PutRefused`
        (an enum is stored as its state index)."""
        if self.kind is Kind.FLOAT:
            return kinds.coerce_float(value)
        if self.kind is Kind.INT:
            return kinds.coerce_int(value)
        if self.kind is Kind.BOOL:
            return builtins.bool(kinds.coerce_enum(value, self.choices))
        if self.kind is Kind.ENUM:
            return kinds.coerce_enum(value, self.choices)
        if self.kind is Kind.STRING:
            return kinds.coerce_string(value)
        return kinds.coerce_array(value, np.dtype(self.dtype), self.max_length)

    def clamped(self, value: Any) -> Any:
        """``value`` limited to the control limits (a copy for an array)."""
        if self.limits is None:
            return value
        lo, hi = self.limits
        if isinstance(value, np.ndarray):
            return np.clip(value, lo, hi).astype(value.dtype, copy=False)
        if self.kind is Kind.INT:
            return max(math.ceil(lo), min(math.floor(hi), value))
        return max(lo, min(hi, value))

    def within_limits(self, value: Any) -> builtins.bool:
        """True when ``value`` is inside the control limits (or there are none)."""
        if self.limits is None:
            return True
        lo, hi = self.limits
        if isinstance(value, np.ndarray):
            return value.size == 0 or builtins.bool(lo <= value.min() and value.max() <= hi)
        return builtins.bool(lo <= value <= hi)

    @property
    def is_integral(self) -> builtins.bool:
        """True for int PVs and integer arrays."""
        return self.kind is Kind.INT or (self.kind is Kind.ARRAY and self.dtype[0] in "iu")

    @property
    def display_precision(self) -> builtins.int:
        """Digits after the point clients should show: 0 for integral values."""
        return 0 if self.is_integral else self.precision

    @property
    def is_numeric(self) -> builtins.bool:
        """True for float, int and array PVs (those with units and limits)."""
        return self.kind in (Kind.FLOAT, Kind.INT, Kind.ARRAY)

    # -- descriptor and hook decorators ------------------------------------
    def __set_name__(self, owner: type, attr: str) -> None:
        object.__setattr__(self, "attr", attr)
        if self.name is None:
            object.__setattr__(self, "name", attr.upper())

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> PVSpec[T]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> PV[T]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None) -> PVSpec[T] | PV[T]:
        if instance is None:
            return self
        live: PV[T] = instance.pv_by_attr(self.attr)  # type: ignore[attr-defined]
        return live

    def __set__(self, instance: object, value: Never) -> None:  # mypy: no assignment
        raise AttributeError(f"PV attribute {self.attr!r} cannot be replaced; "
                             f"set self.{self.attr}.value instead")

    def validator(self, fn: Callable[[S, T], Awaitable[T | None]]
                  ) -> Callable[[S, T], Awaitable[T | None]]:
        """Decorate ``async def check(self, value: T) -> T | None``: raise PutRefused
        to refuse a client put, return a replacement value, or return None to
        accept as is."""
        check_async_method(fn, "validator", ("value",))
        setattr(fn, HOOK_ATTR, ("validator", self))
        return fn

    def on_put(self, fn: Callable[[S, T], Awaitable[None]]) -> Callable[[S, T], Awaitable[None]]:
        """Decorate ``async def hook(self, value: T) -> None``, awaited after each
        accepted client put; the client's put completes when it returns."""
        check_async_method(fn, "put hook", ("value",))
        setattr(fn, HOOK_ATTR, ("on_put", self))
        return fn

    def describe(self) -> dict[str, Any]:
        """The stable JSON-able description used by ``podioc describe --json``."""
        return {
            "kind": self.kind.value,
            "writable": self.writable,
            "description": self.description,
            "units": self.units,
            "precision": self.display_precision,
            "limits": list(self.limits) if self.limits else None,
            "display_limits": list(self.display_limits) if self.display_limits else None,
            "alarm": None if self.alarm is None else {
                k: getattr(self.alarm, k) for k in ("lolo", "low", "high", "hihi")},
            "choices": list(self.choices) if self.kind in (Kind.ENUM, Kind.BOOL) else None,
            "dtype": self.dtype if self.kind is Kind.ARRAY else None,
            "max_length": self.max_length if self.kind is Kind.ARRAY else 1,
            "autosave": self.autosave,
            "on_limit": self.on_limit,
            "deadband": self.deadband,
            "archive_deadband": self.archive_deadband,
        }


def _choice_problems(choices: tuple[str, ...]) -> list[str]:
    out = []
    if not 1 <= len(choices) <= kinds.MAX_ENUM_STATES:
        out.append(f"an enum needs 1..{kinds.MAX_ENUM_STATES} states, got {len(choices)}")
    for c in choices:
        if not isinstance(c, str) or len(c.encode()) > kinds.MAX_ENUM_STRING:
            out.append(f"enum state {c!r} must be a string of at most "
                       f"{kinds.MAX_ENUM_STRING} bytes")
    if len(set(choices)) != len(choices):
        out.append(f"enum states {list(choices)} are not unique")
    return out
