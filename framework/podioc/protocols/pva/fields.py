"""Record fields over PVA (``P:X.DESC`` ...), made when a client first asks.

A p4p ``DynamicProvider`` answers searches for ``<PV>.<FIELD>`` where the PV's
record type has that field (:mod:`podioc.model.records`) and makes a
read-only NTScalar (NTEnum for menus) on first use; a put is refused and
recorded in the put log. p4p calls the handler
from its own threads, so the channels are thread-based SharedPVs; SEVR, STAT
and NORD are re-posted from the event loop when the PV changes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from p4p.nt import NTEnum, NTScalar
from p4p.server import DynamicProvider
from p4p.server.thread import SharedPV

from ...access.hosts import peer_ip
from ...model import records
from ...model.state import PV

if TYPE_CHECKING:  # imports pydantic (its settings): not needed to serve
    from ...putlog import PutLog

log = logging.getLogger(__name__)

_NT = {records.STRING: "s", records.DOUBLE: "d", records.LONG: "i"}


class _ReadOnly:
    """Refuses puts (on p4p's thread) and records them in the put log (on the loop)."""

    def __init__(self, channels: FieldChannels, pv: PV, field: str) -> None:
        self.channels = channels
        self.pv = pv
        self.field = field

    def put(self, shared: SharedPV, op: Any) -> None:
        reason = f"{op.name()}: record fields are read-only over PVA"
        putlog = self.channels.putlog
        if putlog is not None:
            try:
                request = op.value()
                new = request["value"] if request.changed("value") else None
            except Exception:  # not a value we can read: log the refusal without it
                new = None
            self.channels.loop.call_soon_threadsafe(
                putlog.record, "pva", str(op.name()), _value(self.pv, self.field), new,
                peer_ip(str(op.peer())), str(op.account()), reason)
        op.done(error=reason)


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

    def __init__(self, pvs: dict[str, PV], values: dict[str, Any],
                 loop: asyncio.AbstractEventLoop, putlog: PutLog | None = None) -> None:
        self.pvs = pvs
        self.putlog = putlog
        self.values = values  # PV name -> its own SharedPV (what <PV>.VAL is)
        self.loop = loop
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
                shared = SharedPV(handler=_ReadOnly(self, pv, field),
                                  initial=_wrap(fdef, _value(pv, field)))
                self.made[name] = shared
                if field in records.LIVE_FIELDS:
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
        pv.subscribe(changed)


def make_field_provider(pvs: dict[str, PV], values: dict[str, Any],
                        putlog: PutLog | None = None) -> Any:
    """The provider of record fields (keep a reference: p4p holds providers weakly);
    ``values`` maps each PV's name to its SharedPV (served as ``<PV>.VAL``); refused
    puts are recorded in ``putlog``."""
    return DynamicProvider("podioc-fields",
                           FieldChannels(pvs, values, asyncio.get_running_loop(), putlog))
