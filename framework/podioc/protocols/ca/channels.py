"""caproto ChannelData bound to model PVs, and the pvdb that serves them.

Reads come from caproto's cache of the model (refreshed on every change),
writes go to the model's put path, and the model's changes are published to
CA monitors. caproto's cache (``ChannelData._data``) is written directly: its
public setters would run caproto's own limit and alarm logic, which the model
already did. The timestamp is not copied: ``timestamp`` and ``epics_timestamp``
read the model's when a read asks (a caproto ``TimeStamp`` per change cost
about a fifth of a put).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import numpy as np
from caproto import (
    EPICS2UNIX_EPOCH,
    AccessRights,
    AlarmSeverity,
    AlarmStatus,
    ChannelType,
    SubscriptionType,
    TimeStamp,
)

from ...model.kinds import Kind
from ...model.records import control_limits, display_limits, record_type, split_field
from ...model.spec import PVSpec
from ...model.state import POST_LOG, POST_VALUE, PV
from ...util.gcpause import gc_paused
from ...util.tasks import watch
from ..typemap import mapping
from .dbr import (
    STRING_TYPES,
    STS_LAYOUT,
    AckState,
    class_name,
    float_strings,
    from_wire,
    stsack,
)
from .fields import make_field_channel

log = logging.getLogger(__name__)

_META_TYPES = (ChannelType.PUT_ACKS, ChannelType.PUT_ACKT, ChannelType.STSACK_STRING,
               ChannelType.CLASS_NAME)
_VALUE_FLAGS = SubscriptionType.DBE_VALUE | SubscriptionType.DBE_LOG
_READ_WRITE = AccessRights.READ | AccessRights.WRITE
_TO_DOUBLE = (ChannelType.STRING, ChannelType.INT, ChannelType.FLOAT, ChannelType.LONG,
              ChannelType.DOUBLE)
#: DBR types whose count-1 value, as :mod:`.hotlane` decodes it (a number as it
#: is, a DBR_STRING's text as a float), is what caproto's conversion would hand
#: the model for a PV of this kind. A DBR_DOUBLE to an integer channel is
#: truncated by the conversion, and text to it may overflow: not here.
_EXACT_PUTS = {Kind.FLOAT: frozenset(map(int, _TO_DOUBLE)),
               Kind.INT: frozenset((int(ChannelType.INT), int(ChannelType.LONG)))}


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
    #: DBR types (ints) of the puts :meth:`PV.put_now` may take unconverted.
    exact_puts: frozenset[int]
    #: A read never waits (caproto's conversion of the cached model value):
    #: :func:`.fastpath.content_now` may do it without an event-loop turn.
    reads_now = True
    _pending_flags: int
    _tasks: set[asyncio.Task[None]]

    def _bind(self, pv: PV) -> None:
        self.pv = pv
        self.exact_puts = _EXACT_PUTS.get(pv.spec.kind, frozenset())
        self._pending_flags = 0
        self._tasks = set()
        self.ack = AckState()
        self._copy_state()
        pv.subscribe(self._on_change)
        pv.subscribe_metadata(self._on_metadata)

    def _on_metadata(self, pv: PV) -> None:
        """New metadata (a written ``.EGU``, ``.HIHI``...): caproto's copy, then DBE_PROPERTY."""
        self._data.update(metadata(pv.spec))  # type: ignore[attr-defined]
        self._content.clear()  # type: ignore[attr-defined]
        if self._monitored():
            self._queue_publish(SubscriptionType.DBE_PROPERTY)

    def check_access(self, hostname: str, username: str) -> AccessRights:
        return _READ_WRITE if self.pv.spec.writable else AccessRights.READ

    async def write_from_dbr(self, data: Any, data_type: ChannelType, metadata: Any, *,
                             flags: int = 0) -> Any:
        """A client's write; returns the value stored (None for an alarm acknowledgement)."""
        if data_type in (ChannelType.PUT_ACKS, ChannelType.PUT_ACKT):
            await self._write_ack(data_type, data, metadata)
            return None
        if data_type in _META_TYPES:
            await super().write_from_dbr(data, data_type, metadata,  # type: ignore[misc]
                                         flags=flags)
            return None
        return await self.pv.put(self._from_wire(data, data_type))

    def writes_now(self, data_type: ChannelType) -> bool:
        """True when a client's write of ``data_type`` has nothing to await: a
        value to a PV without validators or put hooks (see :meth:`PV.put_now`)."""
        return data_type not in _META_TYPES and self.pv.puts_now

    def write_now(self, data: Any, data_type: ChannelType) -> Any:
        """:meth:`write_from_dbr` done at once, when :meth:`writes_now` allows it."""
        return self.pv.put_now(self._from_wire(data, data_type))

    def _from_wire(self, data: Any, data_type: ChannelType) -> Any:
        value = from_wire(self, data, data_type, self.pv.name)
        if isinstance(value, bytes) and self.pv.spec.kind is Kind.ARRAY:
            value = np.frombuffer(value, dtype=np.uint8)  # DBR_CHAR data arrive as bytes
        return value

    async def _write_ack(self, data_type: ChannelType, data: Any, metadata: Any) -> None:
        raw = getattr(metadata, "value", None)
        value = int(raw if raw is not None else np.asarray(data).ravel()[0])
        severity = int(self.pv.alarm.severity)
        if data_type == ChannelType.PUT_ACKS:
            changed = self.ack.put_acks(value)
        else:
            changed = self.ack.put_ackt(bool(value), severity)
        if changed:
            self._content.clear()  # type: ignore[attr-defined]
            self._queue_publish(SubscriptionType.DBE_ALARM)

    # -- reads ---------------------------------------------------------------
    def calculate_length(self, value: Any) -> int:
        """caproto's element count; the empty data of a DBR_CLASS_NAME or
        DBR_STSACK_STRING answer counts 1 (caproto: 0 on DBR_CHAR channels)."""
        if isinstance(value, bytes) and not value:
            return 1
        return int(super().calculate_length(value))  # type: ignore[misc]

    async def _read(self, data_type: Any) -> Any:
        """caproto's read, with the DBR types EPICS base answers otherwise (:mod:`.dbr`)."""
        if data_type in STS_LAYOUT:
            data_type = ChannelType.STS_STRING
        elif data_type == ChannelType.CLASS_NAME:  # caproto's fails for DBR_CHAR channels
            return class_name(record_type(self.pv.spec)), b""
        elif data_type == ChannelType.STSACK_STRING:
            metadata, values = await self._read(ChannelType.STS_STRING)
            return stsack(metadata.status, metadata.severity, self.ack, values[0]), b""
        metadata, values = await super()._read(data_type)  # type: ignore[misc]
        spec = self.pv.spec
        if data_type in STRING_TYPES and (spec.kind is Kind.FLOAT or (
                spec.kind is Kind.ARRAY and spec.dtype.startswith("float"))):
            values = float_strings(self.pv.raw, self.pv.spec.precision)
        return metadata, values

    # -- model -> caproto ---------------------------------------------------
    @property
    def timestamp(self) -> float:
        """UNIX timestamp of the model's value (s)."""
        return self.pv.timestamp_ns / 1e9

    @property
    def epics_timestamp(self) -> TimeStamp:
        """The model's timestamp as caproto's reads send it: made when read, not
        when the value changes (caproto's ``_data["timestamp"]`` is not used)."""
        return epics_stamp(self.pv.timestamp_ns)

    def _copy_state(self) -> bool:
        pv = self.pv
        self._data["value"] = ca_value(pv)  # type: ignore[attr-defined]
        alarm = self.alarm._data  # type: ignore[attr-defined]
        now = pv.alarm
        status, severity = int(now.status), int(now.severity)
        if alarm["status"] == status and alarm["severity"] == severity:
            return False
        alarm["status"], alarm["severity"] = AlarmStatus(status), AlarmSeverity(severity)
        self.ack.on_severity(severity)
        return True

    def _monitored(self) -> bool:
        """True while some CA monitor is subscribed (caproto keeps emptied sets)."""
        queues = self._queues  # type: ignore[attr-defined]
        return bool(queues) and any(specs for syncs in queues.values()
                                    for types in syncs.values() for specs in types.values())

    def _on_change(self, pv: PV) -> None:
        posts = pv.posts  # the deadbands' verdict (MDEL/ADEL)
        flags = _VALUE_FLAGS if posts == POST_VALUE | POST_LOG else (
            (SubscriptionType.DBE_VALUE if posts & POST_VALUE else 0)
            | (SubscriptionType.DBE_LOG if posts & POST_LOG else 0))
        if self._copy_state():
            flags |= SubscriptionType.DBE_ALARM
        # Drop the conversions caproto cached for the old value now, not when the
        # publish runs: a monitor made meanwhile must start from this value.
        self._content.clear()  # type: ignore[attr-defined]
        if flags and self._monitored():
            self._queue_publish(flags)

    def _queue_publish(self, flags: int) -> None:
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


def metadata(spec: PVSpec) -> dict[str, Any]:
    """caproto's metadata of a numeric PV (units, limits); {} for other kinds."""
    if not spec.is_numeric:
        return {}
    integral = spec.is_integral
    lo, hi = display_limits(spec)
    clo, chi = control_limits(spec)
    alarm = spec.alarm
    return dict(
        units=spec.units, lower_disp_limit=lo, upper_disp_limit=hi,
        lower_ctrl_limit=clo, upper_ctrl_limit=chi,
        lower_alarm_limit=_nan_if_none(alarm.lolo if alarm else None, integral),
        lower_warning_limit=_nan_if_none(alarm.low if alarm else None, integral),
        upper_warning_limit=_nan_if_none(alarm.high if alarm else None, integral),
        upper_alarm_limit=_nan_if_none(alarm.hihi if alarm else None, integral))


def make_channel(pv: PV) -> Any:
    """Build the caproto ChannelData serving one model PV."""
    spec = pv.spec
    cls = _bound_class(mapping(spec).ca_class)
    kwargs: dict[str, Any] = {"value": ca_value(pv), "timestamp": time.time()}
    if not (spec.kind is Kind.ARRAY and spec.dtype == "uint8"):
        kwargs["string_encoding"] = "utf-8"  # caproto's ChannelByte refuses an encoding
    if spec.kind in (Kind.ENUM, Kind.BOOL):
        kwargs["enum_strings"] = list(spec.choices)
    elif spec.is_numeric:
        kwargs.update(metadata(spec))
        if spec.kind is Kind.ARRAY:
            kwargs["max_length"] = spec.max_length
        if spec.kind is Kind.FLOAT or (spec.kind is Kind.ARRAY and not spec.is_integral):
            kwargs["precision"] = spec.precision
    if spec.kind is Kind.ARRAY and spec.dtype == "uint8":
        kwargs["strip_null_terminator"] = False
    channel = cls(**kwargs)
    channel._bind(pv)
    return channel


class LazyPVDB(dict[str, Any]):
    """caproto's pvdb, serving at once and making the ChannelData as it goes.

    caproto looks names up with ``pvdb[name]`` (search, create channel), which
    ends here for a PV not made yet; :meth:`fill` makes the rest in the
    background, a slice per event-loop turn. At 10,000 PVs the server answers
    ~0.3 s sooner. Iterating the pvdb yields the channels made so far.
    """

    def __init__(self, pvs: dict[str, PV]) -> None:
        super().__init__()
        self.pvs = pvs
        self.filling: asyncio.Task[None] | None = None

    def __missing__(self, name: str) -> Any:
        pv = self.pvs.get(name)
        if pv is not None:
            channel = self[name] = make_channel(pv)
            return channel
        base, field = split_field(name)
        pv = self.pvs.get(base) if field else None
        if pv is None:
            raise KeyError(name)
        channel = self[base] if field == "VAL" else make_field_channel(pv, field)
        if channel is None:
            raise KeyError(name)
        self[name] = channel
        return channel

    async def fill(self, per_turn: int = 200) -> None:
        """Make every channel not made yet, yielding to the loop between slices."""
        names = list(self.pvs)
        for start in range(0, len(names), per_turn):
            with gc_paused():
                for name in names[start:start + per_turn]:
                    if name not in self:
                        self[name]  # makes it
            await asyncio.sleep(0)


def make_pvdb(pvs: dict[str, PV]) -> dict[str, Any]:
    """The caproto pvdb for a set of model PVs; inside a running loop its channels
    are made in the background (see :class:`LazyPVDB`), otherwise at once."""
    db = LazyPVDB(pvs)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        with gc_paused():
            for name in pvs:
                db[name]  # makes it
        return db
    db.filling = watch(loop.create_task(db.fill(), name="ca-pvdb-fill"))
    return db
