"""Record fields over PVA (``P:X.DESC`` ...), made when a client first asks.

A p4p ``DynamicProvider`` answers searches for ``<PV>.<FIELD>`` where the PV's
record type has that field (:mod:`podioc.model.records`) and makes an
NTScalar (NTEnum for menus) on first use. p4p calls the handler from its own
threads, so the channels are thread-based SharedPVs; SEVR, STAT and NORD are
re-posted from the event loop when the PV changes, the other fields when its
metadata does. The fields of :data:`~podioc.model.metadata.WRITABLE_FIELDS`
take puts (through the access rules, as the PV's own name), applied on the
event loop; the others refuse them. Every put is recorded in the put log.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from p4p.nt import NTEnum, NTScalar
from p4p.server import DynamicProvider
from p4p.server.thread import SharedPV

from ...access.hosts import peer_ip
from ...errors import PutRefused
from ...model import records
from ...model.metadata import WRITABLE_FIELDS
from ...model.state import PV
from .channels import PutGuard

if TYPE_CHECKING:  # imports pydantic (its settings): not needed to serve
    from ...putlog import PutLog

log = logging.getLogger(__name__)

_NT = {records.STRING: "s", records.DOUBLE: "d", records.LONG: "i"}


#: How long a field put may wait for the event loop (s).
PUT_TIMEOUT = 10.0


class _FieldPut:
    """p4p handler of one field: a put of a writable field goes to the model (on
    the event loop); every put, accepted or refused, goes to the put log."""

    def __init__(self, channels: FieldChannels, pv: PV, field: str) -> None:
        self.channels, self.pv, self.field = channels, pv, field

    def put(self, shared: SharedPV, op: Any) -> None:
        new: Any = None
        loop = self.channels.loop
        try:
            request = op.value()
            key = "value.index" if request.has("value.index") else "value"
            new = request[key] if request.changed(key) else None
            if self.field not in WRITABLE_FIELDS:
                raise PutRefused(f"{self.pv.name}.{self.field} is read-only")
            guard = self.channels.guard
            if guard is not None:
                guard(self.pv, op)
            if new is None:
                raise PutRefused(f"{self.pv.name}.{self.field}: put carries no value")
            value = new

            async def apply() -> tuple[Any, Any]:
                old = _value(self.pv, self.field)
                self.pv.set_field(self.field, value)
                return old, _value(self.pv, self.field)

            old, stored = asyncio.run_coroutine_threadsafe(apply(), loop).result(PUT_TIMEOUT)
        except PutRefused as exc:
            self._log(op, _value(self.pv, self.field), new, str(exc))
            op.done(error=str(exc))
        except Exception as exc:
            log.exception("put to %s.%s failed", self.pv.name, self.field)
            op.done(error=f"{self.pv.name}.{self.field}: {type(exc).__name__}: {exc}")
        else:
            self._log(op, old, stored, None)
            op.done()

    def _log(self, op: Any, old: Any, new: Any, reason: str | None) -> None:
        putlog = self.channels.putlog
        if putlog is not None:
            self.channels.loop.call_soon_threadsafe(
                putlog.record, "pva", f"{self.pv.name}.{self.field}", old, new,
                peer_ip(str(op.peer())), str(op.account()), reason)


def _value(pv: PV, field: str) -> Any:
    raw = pv.raw
    length = len(raw) if hasattr(raw, "__len__") and not isinstance(raw, str) else 1
    return records.field_value(pv.spec, field, pv.name, int(pv.alarm.severity),
                               int(pv.alarm.status), length)


@functools.cache
def _nt(kind: str) -> Any:
    return NTEnum() if kind == records.MENU else NTScalar(_NT[kind])


def _wrap(fdef: records.FieldDef, value: Any) -> Any:
    """A Value of one shared type per field kind (a post must keep the type)."""
    if fdef.kind == records.MENU:
        value = {"index": int(value), "choices": list(fdef.choices)}
    return _nt(fdef.kind).wrap(value, timestamp=time.time())


class FieldChannels:
    """The DynamicProvider handler: ``<PV>.<FIELD>`` -> a SharedPV, made once."""

    def __init__(self, pvs: dict[str, PV], values: Mapping[str, Any],
                 loop: asyncio.AbstractEventLoop, guard: PutGuard | None = None,
                 putlog: PutLog | None = None) -> None:
        self.pvs = pvs
        self.putlog = putlog
        self.values = values  # PV name -> its own SharedPV (what <PV>.VAL is)
        self.loop = loop
        self.guard = guard  # access rules for puts (see .access)
        self.made: dict[str, SharedPV] = {}
        self.lock = threading.Lock()

    def _find(self, name: str) -> tuple[PV, str, records.FieldDef] | None:
        base, field = records.split_field(name)
        pv = self.pvs.get(base) if field else None
        if pv is not None and field == "VAL":
            return pv, field, records.FieldDef(records.DOUBLE)
        fdef = records.field_names(pv.spec).get(field) if pv is not None else None
        return (pv, field, fdef) if pv is not None and fdef is not None else None

    def testChannel(self, name: str) -> bool:
        return self._find(name) is not None

    def makeChannel(self, name: str, peer: str) -> SharedPV | None:
        found = self._find(name)
        if found is None:
            return None
        pv, field, fdef = found
        if field == "VAL":
            return self.values.get(pv.name)
        with self.lock:
            shared = self.made.get(name)
            if shared is None:
                shared = SharedPV(handler=_FieldPut(self, pv, field),
                                  initial=_wrap(fdef, _value(pv, field)))
                self.made[name] = shared
                self.loop.call_soon_threadsafe(self._follow, pv, field, fdef, shared)
            return shared

    def _follow(self, pv: PV, field: str, fdef: records.FieldDef, shared: SharedPV) -> None:
        last = [_value(pv, field)]

        def changed(_pv: PV) -> None:
            value = _value(pv, field)
            if value != last[0]:
                last[0] = value
                shared.post(_wrap(fdef, value))

        changed(pv)
        if field in records.LIVE_FIELDS:
            pv.subscribe(changed)
        else:
            pv.subscribe_metadata(changed)


def make_field_provider(pvs: dict[str, PV], values: Mapping[str, Any],
                        guard: PutGuard | None = None, putlog: PutLog | None = None) -> Any:
    """The provider of record fields (keep a reference: p4p holds providers weakly);
    ``values`` maps each PV's name to its SharedPV (served as ``<PV>.VAL``);
    ``guard(pv, op)`` applies the access rules to field puts; every put is
    recorded in ``putlog``."""
    return DynamicProvider("podioc-fields", FieldChannels(
        pvs, values, asyncio.get_running_loop(), guard, putlog))
