"""Record fields over CA (``P:X.DESC``, ``P:X.SEVR``, ...), made on first search.

A field channel is a caproto ChannelData built from the PV's spec
(:mod:`podioc.model.records`); SEVR, STAT and NORD follow the PV's state, the
others its metadata, and post to their monitors (STAT, a menu of 22 choices,
is served as a string: CA enums carry at most 16). The metadata fields of
:data:`~podioc.model.metadata.WRITABLE_FIELDS` take writes (through the access
rules, as the PV's own name) and change the PV's metadata on both protocols;
the others are read-only. ``P:X.VAL`` is the PV's own channel. Nothing exists
for a field until a client searches for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import caproto as ca
from caproto import MAX_ENUM_STATES, AccessRights, SubscriptionType

from ...errors import PutRefused
from ...model import records
from ...model.metadata import WRITABLE_FIELDS
from ...model.state import PV
from .dbr import from_wire

log = logging.getLogger(__name__)


class _FieldMixin:
    """A field: copies the PV's state or metadata and publishes on change; the
    metadata fields operators change take writes."""

    pv: PV
    field: str

    def check_access(self, hostname: str, username: str) -> AccessRights:
        if self.field in WRITABLE_FIELDS:
            return AccessRights.READ | AccessRights.WRITE
        return AccessRights.READ

    async def write_from_dbr(self, data: Any, data_type: ca.ChannelType, metadata: Any, *,
                             flags: int = 0) -> None:
        self.write_now(data, data_type)

    def writes_now(self, data_type: ca.ChannelType) -> bool:
        """A field write has nothing to await."""
        return True

    def write_now(self, data: Any, data_type: ca.ChannelType) -> None:
        """Set the field from a client's write (PutRefused if it is read-only or bad)."""
        if self.field not in WRITABLE_FIELDS:
            raise PutRefused(f"{self.pv.name}.{self.field} is read-only")
        value = from_wire(self, data, data_type, f"{self.pv.name}.{self.field}")
        if not isinstance(value, str | bytes) and len(value) == 1:
            value = value[0]
        self.pv.set_field(self.field, value)

    def _follow(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        if self.field in records.LIVE_FIELDS:
            self.pv.subscribe(self._on_change)
        else:
            self.pv.subscribe_metadata(self._on_change)

    def _current(self) -> Any:
        pv = self.pv
        value = records.field_value(pv.spec, self.field, pv.name, int(pv.alarm.severity),
                                    int(pv.alarm.status), _length(pv))
        fdef = records.field_names(pv.spec)[self.field]
        return fdef.choices[value] if fdef.kind == records.MENU else value

    def _on_change(self, pv: PV) -> None:
        value = self._current()
        data = self._data  # type: ignore[attr-defined]
        if data["value"] == value:
            return
        data["value"] = value
        self._content.clear()  # type: ignore[attr-defined]  # reads use it (fastpath)
        task = asyncio.get_running_loop().create_task(self._publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self) -> None:
        try:
            await self.publish(SubscriptionType.DBE_VALUE | SubscriptionType.DBE_LOG)  # type: ignore[attr-defined]
        except Exception:
            log.exception("publishing %s.%s failed", self.pv.name, self.field)


def _length(pv: PV) -> int:
    raw = pv.raw
    return len(raw) if hasattr(raw, "__len__") and not isinstance(raw, str) else 1


_BASES = {records.STRING: ca.ChannelString, records.DOUBLE: ca.ChannelDouble,
          records.LONG: ca.ChannelInteger, records.MENU: ca.ChannelEnum}
_classes = {kind: type(f"PodiocField{base.__name__}", (_FieldMixin, base), {})
            for kind, base in _BASES.items()}


def make_field_channel(pv: PV, field: str) -> Any | None:
    """The channel of ``pv``'s record field ``field``, or None if its record type
    has no such field."""
    fdef = records.field_names(pv.spec).get(field)
    if fdef is None:
        return None
    value = records.field_value(pv.spec, field, pv.name, int(pv.alarm.severity),
                                int(pv.alarm.status), _length(pv))
    kind = fdef.kind
    kwargs: dict[str, Any] = {"value": value}
    if kind == records.MENU:
        kwargs = {"value": fdef.choices[value], "enum_strings": list(fdef.choices)}
        if len(fdef.choices) > MAX_ENUM_STATES:  # STAT: 22 choices; CA enums carry 16
            kind, kwargs = records.STRING, {"value": fdef.choices[value]}
    if kind != records.LONG:
        kwargs["string_encoding"] = "utf-8"
    channel = _classes[kind](**kwargs)
    channel.pv, channel.field = pv, field
    channel._follow()
    return channel
