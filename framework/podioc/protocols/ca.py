"""Channel Access adapter: caproto ChannelData bound to model PVs."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from caproto import AccessRights, AlarmSeverity, AlarmStatus, ChannelType, SubscriptionType
from caproto import _backend as backend
from caproto._constants import EPICS2UNIX_EPOCH
from caproto._dbr import TimeStamp, native_type
from caproto._utils import ConversionDirection

from ..model.kinds import Kind
from ..model.state import PV
from .typemap import display_limits, mapping

log = logging.getLogger(__name__)

_META_TYPES = (ChannelType.PUT_ACKS, ChannelType.PUT_ACKT, ChannelType.STSACK_STRING,
               ChannelType.CLASS_NAME)
_VALUE_FLAGS = SubscriptionType.DBE_VALUE | SubscriptionType.DBE_LOG


def epics_stamp(timestamp_ns: int) -> TimeStamp:
    """A caproto TimeStamp (EPICS epoch) with exactly the model's nanoseconds."""
    sec, ns = divmod(timestamp_ns, 1_000_000_000)
    return TimeStamp(int(sec - EPICS2UNIX_EPOCH), ns)


def ca_value(pv: PV) -> Any:
    """The model value in the form caproto stores for this kind."""
    if pv.spec.kind in (Kind.ENUM, Kind.BOOL):
        return pv.spec.choices[int(pv.raw)]
    return pv.raw


class _Bound:
    """Mixin for caproto ChannelData classes: reads come from caproto's cache of the
    model, writes go to the model, and the model's changes are posted here."""

    pv: PV
    _pending_flags: int
    _tasks: set[asyncio.Task[None]]

    def _bind(self, pv: PV) -> None:
        self.pv = pv
        self._pending_flags = 0
        self._tasks = set()
        self._copy_state()
        pv.subscribe(self._on_change)

    def check_access(self, hostname: str, username: str) -> AccessRights:
        if self.pv.spec.writable:
            return AccessRights.READ | AccessRights.WRITE
        return AccessRights.READ

    async def write_from_dbr(self, data: Any, data_type: ChannelType, metadata: Any, *,
                             flags: int = 0) -> None:
        if data_type in _META_TYPES:
            await super().write_from_dbr(data, data_type, metadata,  # type: ignore[misc]
                                         flags=flags)
            return
        value = backend.convert_values(
            values=data, from_dtype=native_type(data_type), to_dtype=self.data_type,  # type: ignore[attr-defined]
            string_encoding="utf-8", enum_strings=getattr(self, "enum_strings", None),
            direction=ConversionDirection.FROM_WIRE)
        await self.pv.put(value)

    # -- model -> caproto ---------------------------------------------------
    def _copy_state(self) -> bool:
        pv = self.pv
        data = self._data  # type: ignore[attr-defined]
        data["value"] = ca_value(pv)
        data["timestamp"] = epics_stamp(pv.timestamp_ns)
        alarm = self.alarm._data  # type: ignore[attr-defined]
        status, severity = AlarmStatus(int(pv.alarm.status)), AlarmSeverity(int(pv.alarm.severity))
        changed = alarm["status"] != status or alarm["severity"] != severity
        alarm["status"], alarm["severity"] = status, severity
        return bool(changed)

    def _on_change(self, pv: PV) -> None:
        flags = _VALUE_FLAGS
        if self._copy_state():
            flags |= SubscriptionType.DBE_ALARM
        if self._pending_flags:
            self._pending_flags |= flags  # a publish is queued; it will send the newest
            return
        self._pending_flags = flags
        task = asyncio.get_running_loop().create_task(self._publish_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_pending(self) -> None:
        flags, self._pending_flags = self._pending_flags, 0
        try:
            await self.publish(flags)  # type: ignore[attr-defined]
        except Exception:
            log.exception("publishing %s failed", self.pv.name)


_classes: dict[type[Any], type[Any]] = {}


def _bound_class(base: type[Any]) -> type[Any]:
    if base not in _classes:
        _classes[base] = type(f"Podioc{base.__name__}", (_Bound, base), {})
    return _classes[base]


def _nan_if_none(value: float | None, integral: bool) -> float:
    if value is None:
        return 0 if integral else math.nan
    return value


def make_channel(pv: PV) -> Any:
    """Build the caproto ChannelData serving one model PV."""
    spec = pv.spec
    cls = _bound_class(mapping(spec).ca_class)
    kwargs: dict[str, Any] = {"value": ca_value(pv), "timestamp": time.time(),
                              "string_encoding": "utf-8"}
    if spec.kind in (Kind.ENUM, Kind.BOOL):
        kwargs["enum_strings"] = list(spec.choices)
    elif spec.is_numeric:
        integral = spec.kind is Kind.INT or (spec.kind is Kind.ARRAY and spec.dtype[0] in "iu")
        lo, hi = display_limits(spec)
        clo, chi = spec.limits or (0.0, 0.0)
        alarm = spec.alarm
        kwargs.update(
            units=spec.units, lower_disp_limit=lo, upper_disp_limit=hi,
            lower_ctrl_limit=clo, upper_ctrl_limit=chi,
            lower_alarm_limit=_nan_if_none(alarm.lolo if alarm else None, integral),
            lower_warning_limit=_nan_if_none(alarm.low if alarm else None, integral),
            upper_warning_limit=_nan_if_none(alarm.high if alarm else None, integral),
            upper_alarm_limit=_nan_if_none(alarm.hihi if alarm else None, integral))
        if spec.kind is Kind.ARRAY:
            kwargs["max_length"] = spec.max_length
        if spec.kind is Kind.FLOAT or (spec.kind is Kind.ARRAY and not integral):
            kwargs["precision"] = spec.precision
    if spec.kind is Kind.ARRAY and spec.dtype == "uint8":
        kwargs["strip_null_terminator"] = False
    channel = cls(**kwargs)
    channel._bind(pv)
    return channel


def make_pvdb(pvs: dict[str, PV]) -> dict[str, Any]:
    """The caproto pvdb for a set of model PVs."""
    return {name: make_channel(pv) for name, pv in pvs.items()}
