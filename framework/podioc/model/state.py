"""The live PV: value, alarm and timestamp, put validation and change notification."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic

import numpy as np

from ..errors import PutRefused
from .alarms import NO_ALARM, AlarmState, Severity, Status
from .hooks import check_async_callable
from .kinds import Kind
from .spec import PVSpec, T
from .threads import Home

log = logging.getLogger(__name__)

#: Bits of :attr:`PV.posts`: the change passes the value / archive deadband.
POST_VALUE, POST_LOG = 1, 2
#: Called with the PV after every change, synchronously, on the event loop's thread
#: (see :mod:`.threads` for changes made from other threads).
Subscriber = Callable[["PV[Any]"], None]
Validator = Callable[[Any], Awaitable[Any]]
PutHook = Callable[[Any], Awaitable[None]]


class PV(Generic[T]):
    """One served PV, ``PV[T]``: ``.value`` is a ``T`` (``float`` for ``pv.float``...).

    Protocol adapters subscribe to it; IOC code sets ``.value``.

    Every change (from IOC code, a CA put or a PVA put) goes through here, gets
    one timestamp and one alarm state, and is then posted to every subscriber,
    so both protocols always report the same thing.

    IOC code may set a PV from any thread: once the IOC is bound to its event
    loop (the runtime does it before the startup hooks), a change from another
    thread is applied on the loop's thread and the caller waits until it is
    (see :mod:`.threads`).
    """

    __slots__ = ("_alarm", "_alst", "_closed", "_home", "_lalm", "_meta_subscribers", "_mlst",
                 "_raw",
                 "_subscribers", "_timestamp_ns", "_user_alarm", "declared", "name",
                 "on_put_hooks", "posts", "spec", "validators")

    def __init__(self, spec: PVSpec[T], name: str) -> None:
        self.spec = spec
        #: The spec as declared; ``spec`` differs once a client wrote a metadata field.
        self.declared = spec
        self.name = name
        self._raw: Any = spec.coerce(spec.initial)
        self._timestamp_ns = time.time_ns()
        self._user_alarm = NO_ALARM
        self._lalm: float | None = None  # the limit that raised the alarm (EPICS's LALM)
        self._alarm = self._settle_alarm()
        #: What the last change passes for monitors: POST_VALUE | POST_LOG, as the
        #: deadbands decide (both without deadbands); subscribers read it.
        self.posts = POST_VALUE | POST_LOG
        self._mlst = self._alst = self._raw  # last value past each deadband
        self._subscribers: list[Subscriber] = []
        self._meta_subscribers: list[Subscriber] = []
        self._closed = False
        self._home: Home | None = None
        self.validators: list[Validator] = []
        self.on_put_hooks: list[PutHook] = []

    # -- reading -----------------------------------------------------------
    @property
    def raw(self) -> Any:
        """The stored value: float, int, bool, enum index, str or read-only ndarray."""
        return self._raw

    @property
    def value(self) -> T:
        """The value; an enum reads as its state string (see ``index``)."""
        if self.spec.kind is Kind.ENUM:
            state: T = self.spec.choices[self._raw]
            return state
        value: T = self._raw
        return value

    @value.setter
    def value(self, value: T) -> None:
        self.set(value)

    @property
    def index(self) -> int:
        """The state index of an enum or bool PV."""
        if self.spec.kind not in (Kind.ENUM, Kind.BOOL):
            raise TypeError(f"{self.name} is not an enum")
        return int(self._raw)

    @property
    def alarm(self) -> AlarmState:
        """Current alarm: the worse of the limit alarm and one set by IOC code."""
        return self._alarm

    @property
    def timestamp(self) -> float:
        """Time of the last change, seconds since 1970 (UTC)."""
        return self._timestamp_ns / 1e9

    @property
    def timestamp_ns(self) -> int:
        """Time of the last change, nanoseconds since 1970 (UTC)."""
        return self._timestamp_ns

    # -- writing -----------------------------------------------------------
    def set(self, value: T, *, timestamp: float | None = None) -> None:
        """Set the value from IOC code: type rules apply, control limits do not.

        Raises :class:`PutRefused` (a ``ValueError``-like error) on a value of
        the wrong type or size. From a thread other than the event loop's, the
        change is applied on the loop thread and this call returns once it is
        (so the thread reads its own write back); it raises ``TimeoutError``
        if the loop does not get to it in time and ``RuntimeError`` once the
        IOC has stopped, changing nothing (see :mod:`.threads`).
        """
        raw = self.spec.coerce(value)
        home = self._home
        if home is None or home.thread_id == threading.get_ident():
            self._commit(raw, timestamp)
        else:
            home.run(self.name, lambda: self._commit(raw, timestamp))

    def set_alarm(self, severity: Severity | int = Severity.NO_ALARM,
                  status: Status | int = Status.NO_ALARM, message: str = "") -> None:
        """Raise or clear an alarm from IOC code (e.g. COMM when a device is lost).

        From another thread it behaves as :meth:`set` does.
        """
        alarm = AlarmState(Severity(severity), Status(status), message or Status(status).name)
        home = self._home
        if home is None or home.thread_id == threading.get_ident():
            self._set_user_alarm(alarm)
        else:
            home.run(self.name, lambda: self._set_user_alarm(alarm))

    async def put(self, value: Any) -> Any:
        """A client's put: refused with :class:`PutRefused` unless it passes every rule.

        Order: writable, type and size, control limits (refused, or clamped with
        ``on_limit="clamp"``), user validators; then
        the value is committed and posted, then ``on_put`` hooks are awaited.
        A refused put changes nothing. Returns the value stored, as ``.value``
        reads it (a validator may have replaced the one asked for).
        """
        new = self._checked(value)
        try:
            for validate in self.validators:
                replaced = await validate(self._public(new))
                if replaced is not None:
                    new = self.spec.coerce(replaced)
        except PutRefused as exc:
            raise PutRefused(f"{self.name}: {exc}") from None
        if self._closed:  # closed while a validator was awaited: the final save is done
            raise PutRefused(f"{self.name}: the IOC is shutting down; puts are closed")
        self._commit(new, None)
        stored = self._public(new)
        for hook in self.on_put_hooks:
            await hook(self.value)
        return stored

    @property
    def puts_now(self) -> bool:
        """True when a client's put has nothing to await (no validators, no
        ``on_put`` hooks), so :meth:`put_now` may take it."""
        return not self.validators and not self.on_put_hooks

    def put_now(self, value: Any) -> Any:
        """:meth:`put` done at once, for a PV whose :attr:`puts_now` is true (the
        protocols answer such puts without a task). Same rules, same result."""
        if not self.puts_now:
            raise RuntimeError(f"{self.name} has validators or put hooks: use put()")
        new = self._checked(value)
        self._commit(new, None)
        return self._public(new)

    def _checked(self, value: Any) -> Any:
        """``value`` as stored, if the PV takes puts and it passes type, size and
        control limits (clamped with ``on_limit="clamp"``); else PutRefused."""
        spec = self.spec
        if self._closed:
            raise PutRefused(f"{self.name}: the IOC is shutting down; puts are closed")
        if not spec.writable:
            raise PutRefused(f"{self.name} is read-only")
        try:
            new = spec.coerce(value)
            if spec.on_limit == "clamp":
                return spec.clamped(new)
            if not spec.within_limits(new):
                lo, hi = spec.limits or (0, 0)
                shown = new if not isinstance(new, np.ndarray) else "an element"
                raise PutRefused(f"{shown} is outside the limits {lo:g} .. {hi:g}")
        except PutRefused as exc:
            raise PutRefused(f"{self.name}: {exc}") from None
        return new

    def set_field(self, field: str, value: Any) -> None:
        """A client's write of a metadata field (``DESC``, ``EGU``, ``HOPR``, ``HIHI``,
        ``HHSV``...; see :mod:`.metadata`): the PV gets the new metadata, its
        metadata subscribers are told, and a changed alarm limit re-evaluates the
        alarm (posted like any change). Raises :class:`PutRefused`, changing
        nothing, on a bad value. Call on the event loop's thread."""
        from .metadata import with_field

        if self._closed:
            raise PutRefused(f"{self.name}: the IOC is shutting down; puts are closed")
        try:
            self.spec = with_field(self.spec, field, value)
        except PutRefused as exc:
            raise PutRefused(f"{self.name}.{field}: {exc}") from None
        for fn in tuple(self._meta_subscribers):
            try:
                fn(self)
            except Exception:
                log.exception("metadata subscriber of %s failed", self.name)
        if self._evaluate_alarm() != self._alarm:
            self._commit(self._raw, None)

    def subscribe_metadata(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(pv)`` after each change of metadata (:meth:`set_field`)."""
        self._meta_subscribers.append(fn)
        return lambda: self._meta_subscribers.remove(fn)

    def validator(self, fn: Callable[[T], Awaitable[T | None]]
                  ) -> Callable[[T], Awaitable[T | None]]:
        """Add ``async def check(value: T) -> T | None`` to this PV's validators
        (after those declared on the class); usable as a decorator. For PVs added
        at run time, where there is no class attribute to decorate with
        ``@spec.validator``; a bound method or ``functools.partial`` works too."""
        check_async_callable(fn, "validator", ("value",))
        self.validators.append(fn)
        return fn

    def on_put(self, fn: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
        """Add ``async def hook(value: T) -> None``, awaited after each accepted
        client put (after the hooks declared on the class); usable as a decorator."""
        check_async_callable(fn, "put hook", ("value",))
        self.on_put_hooks.append(fn)
        return fn

    def close_puts(self) -> None:
        """Refuse all further client puts (used at shutdown)."""
        self._closed = True

    def bind(self, home: Home) -> None:
        """Apply changes made from other threads on ``home``'s loop (see :mod:`.threads`)."""
        self._home = home

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(pv)`` after every change; returns an unsubscribe function."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    # -- internals ---------------------------------------------------------
    def _public(self, raw: Any) -> Any:
        return self.spec.choices[raw] if self.spec.kind is Kind.ENUM else raw

    def _evaluate_alarm(self) -> AlarmState:
        return self._combined(self._limit_alarm())

    def _limit_alarm(self) -> AlarmState:
        alarm = self.spec.alarm
        return NO_ALARM if alarm is None else alarm.evaluate(self._raw, self._lalm)

    def _settle_alarm(self) -> AlarmState:
        """The alarm of the current value; remembers which limit raised it (hysteresis)."""
        alarm = self.spec.alarm
        if alarm is None:  # no alarm limits (the common case): _combined(NO_ALARM)
            self._lalm = None
            user = self._user_alarm
            return user if user.severity > NO_ALARM.severity else NO_ALARM
        limit_alarm = alarm.evaluate(self._raw, self._lalm)
        self._lalm = alarm.limit_of(limit_alarm)
        return self._combined(limit_alarm)

    def _combined(self, limit_alarm: AlarmState) -> AlarmState:
        if self._user_alarm.severity > limit_alarm.severity:
            return self._user_alarm
        return limit_alarm

    def _set_user_alarm(self, alarm: AlarmState) -> None:
        self._user_alarm = alarm
        self._commit(self._raw, None)

    def _passes(self, raw: Any) -> int:
        """POST_VALUE / POST_LOG for a change to ``raw``: with a deadband (MDEL/ADEL),
        only a move of more than it from the last value posted, as EPICS records do."""
        spec = self.spec
        if spec.deadband is None and spec.archive_deadband is None:
            return POST_VALUE | POST_LOG
        out = 0
        if spec.deadband is None or not abs(raw - self._mlst) <= spec.deadband:
            out |= POST_VALUE
            self._mlst = raw
        if spec.archive_deadband is None or not abs(raw - self._alst) <= spec.archive_deadband:
            out |= POST_LOG
            self._alst = raw
        return out

    def _commit(self, raw: Any, timestamp: float | None) -> None:
        self.posts = self._passes(raw)
        self._raw = raw
        self._timestamp_ns = time.time_ns() if timestamp is None else int(timestamp * 1e9)
        self._alarm = self._settle_alarm()
        for fn in tuple(self._subscribers):
            try:
                fn(self)
            except Exception:  # a broken subscriber must not break the others
                log.exception("subscriber of %s failed", self.name)
