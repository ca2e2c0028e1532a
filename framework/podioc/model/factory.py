"""The PV constructors: ``pv.float(...)``, ``pv.enum([...])`` ... and ``pv.device``/``pv.vector``.

Each constructor returns a typed spec: ``pv.float`` a ``PVSpec[float]``,
``pv.int`` a ``PVSpec[int]``, ``pv.bool`` a ``PVSpec[bool]``, ``pv.enum`` and
``pv.string`` a ``PVSpec[str]``, ``pv.waveform`` a ``PVSpec[numpy.ndarray]``.
A waveform's value type does not follow ``dtype``: its value may be set from
an array of any numeric dtype (it is converted), so a narrower type would
refuse valid assignments.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from . import kinds
from .alarms import Alarm, Severity
from .device import Device
from .kinds import Kind
from .members import DeviceSpec, VectorSpec
from .spec import BOOL_CHOICES, Limits, OnLimit, PVSpec

_Alarm = Alarm  # the name Alarm is also a class attribute of the factory

#: The array element types a waveform may have.
ArrayDType = Literal["float64", "float32", "int32", "int16", "uint8"]
D = TypeVar("D", bound=Device)


def _caller() -> str:
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _numeric_common(kw: dict[str, Any]) -> dict[str, Any]:
    for key in ("limits", "display_limits"):
        if kw.get(key) is not None:
            kw[key] = tuple(builtins.float(x) for x in kw[key])
    return kw


class _PVFactory:
    """Namespace of PV constructors: ``pv.float``, ``pv.int``, ``pv.bool``,
    ``pv.enum``, ``pv.string``, ``pv.waveform``; and of sub-devices:
    ``pv.device``, ``pv.vector``."""

    Alarm = Alarm
    Severity = Severity

    def float(self, initial: builtins.float = 0.0, *, name: str | None = None,
              description: str = "", units: str = "", precision: builtins.int = 3,
              limits: Limits | None = None, display_limits: Limits | None = None,
              alarm: _Alarm | None = None, writable: builtins.bool = False,
              autosave: builtins.bool = False, on_limit: OnLimit = "refuse",
              deadband: builtins.float | None = None,
              archive_deadband: builtins.float | None = None) -> PVSpec[builtins.float]:
        """A double-precision scalar (CA DBR_DOUBLE, PVA NTScalar double).
        ``on_limit="clamp"``: a put outside ``limits`` stores the nearest limit.
        ``deadband``/``archive_deadband`` (an ai's MDEL/ADEL): CA value/log
        monitors get a change only when it moves the value by more than that."""
        return PVSpec(Kind.FLOAT, initial, declared_at=_caller(), **_numeric_common(dict(
            name=name, description=description, units=units, precision=precision,
            limits=limits, display_limits=display_limits, alarm=alarm, writable=writable,
            autosave=autosave, on_limit=on_limit, deadband=deadband,
            archive_deadband=archive_deadband)))

    def int(self, initial: builtins.int = 0, *, name: str | None = None,
            description: str = "", units: str = "", limits: Limits | None = None,
            display_limits: Limits | None = None, alarm: _Alarm | None = None,
            writable: builtins.bool = False, autosave: builtins.bool = False,
            on_limit: OnLimit = "refuse", deadband: builtins.float | None = None,
            archive_deadband: builtins.float | None = None) -> PVSpec[builtins.int]:
        """A 32-bit integer scalar (CA DBR_LONG, PVA NTScalar int).
        ``on_limit``, ``deadband`` and ``archive_deadband`` as for :meth:`float`."""
        return PVSpec(Kind.INT, initial, declared_at=_caller(), **_numeric_common(dict(
            name=name, description=description, units=units, limits=limits,
            display_limits=display_limits, alarm=alarm, writable=writable,
            autosave=autosave, on_limit=on_limit, deadband=deadband,
            archive_deadband=archive_deadband)))

    def bool(self, initial: builtins.bool = False, *, name: str | None = None,
             description: str = "", states: tuple[str, str] = BOOL_CHOICES,
             writable: builtins.bool = False, autosave: builtins.bool = False
             ) -> PVSpec[builtins.bool]:
        """A two-state PV (CA DBR_ENUM, PVA NTEnum), like a bo/bi record."""
        return PVSpec(Kind.BOOL, initial, name=name, description=description,
                      choices=tuple(states), writable=writable, autosave=autosave,
                      declared_at=_caller())

    def enum(self, states: list[str] | tuple[str, ...], initial: builtins.int | str = 0, *,
             name: str | None = None, description: str = "",
             writable: builtins.bool = False, autosave: builtins.bool = False
             ) -> PVSpec[str]:
        """One of up to 16 named states (CA DBR_ENUM, PVA NTEnum); the value is the
        state name (``.index`` gives the number)."""
        return PVSpec(Kind.ENUM, initial, name=name, description=description,
                      choices=tuple(states), writable=writable, autosave=autosave,
                      declared_at=_caller())

    def string(self, initial: str = "", *, name: str | None = None, description: str = "",
               writable: builtins.bool = False, autosave: builtins.bool = False
               ) -> PVSpec[str]:
        """A string of at most 39 bytes (CA DBR_STRING, PVA NTScalar string)."""
        return PVSpec(Kind.STRING, initial, name=name, description=description,
                      writable=writable, autosave=autosave, declared_at=_caller())

    def waveform(self, max_length: builtins.int, initial: npt.ArrayLike | None = None, *,
                 dtype: ArrayDType = "float64", name: str | None = None,
                 description: str = "", units: str = "", precision: builtins.int = 3,
                 limits: Limits | None = None, display_limits: Limits | None = None,
                 alarm: _Alarm | None = None, writable: builtins.bool = False,
                 autosave: builtins.bool = False, on_limit: OnLimit = "refuse"
                 ) -> PVSpec[npt.NDArray[Any]]:
        """A 1-D numeric array of at most ``max_length`` elements
        (CA array of the element type, PVA NTScalarArray); ``on_limit="clamp"``
        clamps each element of a put to ``limits``."""
        if initial is None:
            initial = np.zeros(0, dtype=dtype) if dtype in kinds.ARRAY_DTYPES else []
        return PVSpec(Kind.ARRAY, initial, declared_at=_caller(), **_numeric_common(dict(
            name=name, description=description, units=units, precision=precision,
            limits=limits, display_limits=display_limits, alarm=alarm, dtype=dtype,
            max_length=max_length, writable=writable, autosave=autosave,
            on_limit=on_limit)))

    def device(self, cls: type[D], *, name: str | None = None) -> DeviceSpec[D]:
        """One sub-device of class ``cls`` (made with ``cls()``): its PVs are served
        as ``PREFIX + NAME + ":" + PV``, NAME being ``name`` or the attribute name in
        upper case (``name=""``: no segment of its own)."""
        return DeviceSpec(cls, name, _caller())

    def vector(self, cls: type[D], count: builtins.int | str, *, name: str | None = None,
               start: builtins.int = 1) -> VectorSpec[D]:
        """``count`` sub-devices of class ``cls``, numbered from ``start``: member
        ``n`` serves its PVs as ``PREFIX + NAME + str(n) + ":" + PV`` (attribute
        ``ch`` -> ``CH1:``, ``CH2:`` ...). ``count`` is a number or the name of an
        ``__init__`` argument of the class declaring the vector (so it can come
        from the instance config's ``args``)."""
        return VectorSpec(cls, count, name, start, _caller())


#: The PV constructors: ``pv.float(...)``, ``pv.enum([...])``, ``pv.vector(...)`` and so on.
pv = _PVFactory()
