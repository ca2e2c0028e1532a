"""PVAccess adapter: p4p SharedPVs with Normative Types bound to model PVs."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from p4p import Value
from p4p.nt import NTEnum, NTScalar
from p4p.server.asyncio import SharedPV

from ...access.hosts import peer_ip
from ...errors import PutRefused
from ...model.alarms import AlarmState
from ...model.kinds import Kind
from ...model.records import control_limits, display_limits
from ...model.spec import PVSpec
from ...model.state import PV
from ..typemap import mapping, pva_message, pva_status
from .guard import LoopSharedPV

if TYPE_CHECKING:  # imports pydantic (its settings): not needed to serve
    from ...putlog import PutLog

log = logging.getLogger(__name__)

#: Called before each client put with the PV and p4p's ServerOperation; raises PutRefused.
PutGuard = Callable[[PV, Any], None]


def _identity(value: Any) -> Any:
    return value


def nt_for(pv: PV) -> Any:
    """The Normative Type of a PV: NTEnum, NTScalar or NTScalarArray with metadata.

    One instance per type, shared by all PVs of that type: a p4p type per PV
    costs ~15 kB and ~0.1 ms (150 MB and 1 s at 10,000 PVs).
    """
    spec = pv.spec
    if spec.kind in (Kind.ENUM, Kind.BOOL):
        return _shared_nt("enum")
    code = mapping(spec).pva_code
    return _shared_nt("string" if spec.kind is Kind.STRING else "numeric", code)


@functools.cache
def _shared_nt(form: str, code: str = "") -> Any:
    if form == "enum":
        return NTEnum(display=True)
    if form == "string":
        return NTScalar(code, display=True)
    return NTScalar(code, display=True, control=True, valueAlarm=True, form=True)


def _stamp(pv: PV) -> dict[str, int]:
    sec, ns = divmod(pv.timestamp_ns, 1_000_000_000)
    return {"secondsPastEpoch": sec, "nanoseconds": ns}


def _alarm(pv: PV) -> dict[str, Any]:
    alarm = pv.alarm
    status = int(alarm.status)
    return {"severity": int(alarm.severity), "status": pva_status(status),
            "message": pva_message(status, alarm.message)}


def _value_field(pv: PV) -> Any:
    if pv.spec.kind in (Kind.ENUM, Kind.BOOL):
        return {"index": int(pv.raw)}
    return pv.raw


def initial_value(pv: PV, nt: Any) -> Value:
    """The full first Value, with all metadata."""
    spec = pv.spec
    fields: dict[str, Any] = {"alarm": _alarm(pv), "timeStamp": _stamp(pv)}
    if spec.kind in (Kind.ENUM, Kind.BOOL):
        fields["value"] = {"index": int(pv.raw), "choices": list(spec.choices)}
        fields["display"] = {"description": spec.description}
    elif spec.kind is Kind.STRING:
        fields["value"] = pv.raw
        fields["display"] = {"description": spec.description, "units": ""}
    else:
        lo, hi = display_limits(spec)
        clo, chi = control_limits(spec)
        fields["value"] = pv.raw
        fields["display"] = {"limitLow": lo, "limitHigh": hi, "description": spec.description,
                             "units": spec.units, "precision": spec.display_precision,
                             "form": {"index": 0, "choices": ["Default"]}}
        fields["control"] = {"limitLow": clo, "limitHigh": chi, "minStep": 0}
        fields["valueAlarm"] = value_alarm(spec)
    return Value(nt.type, fields)


def value_alarm(spec: PVSpec) -> dict[str, Any]:
    """valueAlarm as QSRV fills it: the limits (NaN when unset; 0 for integer PVs,
    whose limits cannot be NaN), the severities, and ``active`` only when the PV
    has alarm limits."""
    alarm = spec.alarm
    fill = 0 if spec.is_integral else math.nan
    limits = (alarm.lolo, alarm.low, alarm.high, alarm.hihi) if alarm else (None,) * 4
    fields: dict[str, Any] = dict(zip(
        ("lowAlarmLimit", "lowWarningLimit", "highWarningLimit", "highAlarmLimit"),
        (fill if v is None else v for v in limits), strict=True))
    fields["active"] = alarm is not None
    hysteresis = alarm.hysteresis if alarm else 0.0
    fields["hysteresis"] = int(hysteresis) if spec.is_integral else float(hysteresis)
    if alarm is not None:
        fields.update(lowAlarmSeverity=int(alarm.lolo_severity),
                      lowWarningSeverity=int(alarm.low_severity),
                      highWarningSeverity=int(alarm.high_severity),
                      highAlarmSeverity=int(alarm.hihi_severity))
    return fields


class _Handler:
    """p4p handler: client puts go through the model; refusals become PVA errors.

    Every put, accepted or refused, is recorded in ``putlog`` (the host is the
    peer address, the user the account p4p reports)."""

    def __init__(self, pv: PV, guard: PutGuard | None = None,
                 putlog: PutLog | None = None) -> None:
        self.pv = pv
        self.guard = guard  # access rules (see .access)
        self.putlog = putlog

    async def put(self, shared: SharedPV, op: Any) -> None:
        old = self.pv.value
        try:
            stored = await self._put(op)
        except PutRefused as exc:
            self._record(op, old, _requested(self.pv, op), str(exc))
            op.done(error=str(exc))
        except Exception as exc:
            log.exception("put to %s failed", self.pv.name)
            reason = f"{self.pv.name}: {type(exc).__name__}: {exc}"
            self._record(op, old, _requested(self.pv, op), reason)
            op.done(error=reason)
        else:
            self._record(op, old, stored, None)
            op.done()

    async def _put(self, op: Any) -> Any:
        """The model's put of what ``op`` asks for (after the guard); returns the value stored."""
        if self.guard is not None:
            self.guard(self.pv, op)
        request = op.value()
        if self.pv.spec.kind in (Kind.ENUM, Kind.BOOL):
            if not request.changed("value.index"):
                raise PutRefused(f"{self.pv.name}: put carries no value.index")
            return await self.pv.put(request["value.index"])
        if not request.changed("value"):
            raise PutRefused(f"{self.pv.name}: put carries no value")
        return await self.pv.put(request["value"])

    def _record(self, op: Any, old: Any, new: Any, reason: str | None) -> None:
        if self.putlog is not None:
            self.putlog.record("pva", self.pv.name, old, new, peer_ip(str(op.peer())),
                               str(op.account()), reason)


def _requested(pv: PV, op: Any) -> Any:
    """The value a refused put asked for (None when it carried none)."""
    try:
        request = op.value()
        field = "value.index" if pv.spec.kind in (Kind.ENUM, Kind.BOOL) else "value"
        return request[field] if request.changed(field) else None
    except Exception:  # a put whose value cannot even be read: log it without
        return None


class PVABinding:
    """One SharedPV per model PV, open from the start with the PV's state.

    Made in the running event loop (``loop`` None), it follows the PV at once.
    Made in another thread for ``loop`` (pvxs's, when a client first asks for the
    name), it opens there with the state as read from that thread, and follows
    the PV from the loop's next turn, first posting the whole state again if it
    moved meanwhile. (Opened from the loop instead, a SharedPV with operations
    waiting can deadlock: pvxs's thread waits for the GIL the loop holds.)"""

    def __init__(self, pv: PV, guard: PutGuard | None = None,
                 putlog: PutLog | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.pv = pv
        self.nt = nt_for(pv)
        #: the last alarm posted and its PVA fields (p4p copies them into each Value)
        self._alarm_state: AlarmState | None = None
        self._alarm_fields: dict[str, Any] = {}
        handler = _Handler(pv, guard, putlog)
        seen = _version(pv)
        first = initial_value(pv, self.nt)
        if loop is None:
            self.shared = SharedPV(handler=handler, nt=self.nt, initial=first,
                                   wrap=_identity, unwrap=_identity)
            self._follow(seen)
        else:
            self.shared = LoopSharedPV(loop, handler=handler, nt=self.nt, initial=first,
                                       wrap=_identity, unwrap=_identity)
            loop.call_soon_threadsafe(self._follow, seen)

    def _follow(self, seen: tuple[Any, ...]) -> None:
        """Post each change from now on (in the loop), and the state now if it is not
        the one the SharedPV opened with."""
        if _version(self.pv) != seen:
            self.shared.post(initial_value(self.pv, self.nt))
        self.pv.subscribe(self._on_change)
        self.pv.subscribe_metadata(self._on_metadata)

    def _on_metadata(self, pv: PV) -> None:
        """New metadata (a written ``.EGU``, ``.HIHI``...): post the whole structure."""
        self.shared.post(initial_value(pv, self.nt))

    def _on_change(self, pv: PV) -> None:
        alarm = pv.alarm
        if alarm is not self._alarm_state:  # AlarmState is frozen: same object, same fields
            self._alarm_state, self._alarm_fields = alarm, _alarm(pv)
        self.shared.post(Value(self.nt.type, {"value": _value_field(pv),
                                              "alarm": self._alarm_fields,
                                              "timeStamp": _stamp(pv)}))


def _version(pv: PV) -> tuple[Any, ...]:
    """What changes with every update of a PV: timestamp, alarm, metadata."""
    return pv.timestamp_ns, pv.alarm, pv.spec


class Bindings(Mapping[str, SharedPV]):
    """Name -> SharedPV of every model PV, each made when a client first asks for
    its name (as QSRV makes its channels), plus SharedPVs made up front
    (:meth:`add`). A PV no PVA client has asked for costs no p4p object, no
    memory and no post per change; a lookup (``in``) makes nothing."""

    def __init__(self, pvs: dict[str, PV], guard: PutGuard | None,
                 putlog: PutLog | None, loop: asyncio.AbstractEventLoop) -> None:
        self._pvs = pvs
        self._guard = guard
        self._putlog = putlog
        self._loop = loop
        self._made: dict[str, PVABinding] = {}
        self._ready: dict[str, SharedPV] = {}
        self._lock = threading.Lock()  # pvxs may ask from more than one thread

    def add(self, shared: Mapping[str, SharedPV]) -> None:
        """Serve these SharedPVs (made up front) as well."""
        self._ready.update(shared)

    def made(self) -> int:
        """How many PVs' SharedPVs exist so far."""
        return len(self._made)

    def __contains__(self, name: object) -> bool:
        return name in self._pvs or name in self._ready

    def __getitem__(self, name: str) -> SharedPV:
        ready = self._ready.get(name)
        if ready is not None:
            return ready
        with self._lock:
            binding = self._made.get(name)
            if binding is None:
                binding = PVABinding(self._pvs[name], self._guard, self._putlog, self._loop)
                self._made[name] = binding
        return binding.shared

    def __iter__(self) -> Iterator[str]:
        return iter([*self._pvs, *self._ready])

    def __len__(self) -> int:
        return len(self._pvs) + len(self._ready)


def make_providers(pvs: dict[str, PV], guard: PutGuard | None = None,
                   putlog: PutLog | None = None) -> Bindings:
    """name -> SharedPV for p4p's Server, made on first use; ``guard(pv, op)`` may
    refuse a put first; every put is recorded in ``putlog``. Call in the running
    loop."""
    return Bindings(pvs, guard, putlog, asyncio.get_running_loop())


def make_server(providers: list[Any], conf: dict[str, str]) -> Any:
    """p4p's Server for ``providers``, configured by ``conf`` alone (no environment)."""
    from p4p.server import Server

    return Server(providers=providers, conf=conf, useenv=False)
