"""Decorators for IOC and device methods, checked when the class is defined."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import IOCDefinitionError

#: A hook method: ``async def method(self) -> None``.
M = TypeVar("M", bound=Callable[[Any], Awaitable[None]])

#: Attribute set on decorated functions: (hook kind, argument).
HOOK_ATTR = "__podioc_hook__"


def where(obj: Any) -> str:
    """``file:line`` of a function or class, for error messages."""
    try:
        code = inspect.unwrap(obj).__code__
        return f"{code.co_filename}:{code.co_firstlineno}"
    except AttributeError:
        try:
            return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
        except (TypeError, OSError):
            return repr(obj)


def check_async_method(fn: Callable[..., Any], role: str, params: tuple[str, ...]) -> None:
    """Fail unless ``fn`` is ``async def fn(self, *params)``."""
    check_async_callable(fn, role, ("self", *params))


def check_async_callable(fn: Callable[..., Any], role: str, params: tuple[str, ...]) -> None:
    """Fail unless ``fn`` is an async callable taking exactly ``params`` positionally
    (a bound method or a ``functools.partial`` counts without the arguments it holds)."""
    name = getattr(fn, "__name__", repr(fn))
    expected = f"({', '.join(params)})"
    if not inspect.iscoroutinefunction(fn):
        raise IOCDefinitionError(
            f"{where(fn)}: {role} {name!r} must be 'async def', with signature {expected}")
    sig = inspect.signature(fn)
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required_extra = [p for p in sig.parameters.values()
                      if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(positional) != len(params) or required_extra:
        raise IOCDefinitionError(
            f"{where(fn)}: {role} {name!r} has signature {sig}; expected {expected}")


def scan(period: float) -> Callable[[M], M]:
    """Run the decorated ``async def method(self)`` every ``period`` seconds.

    Runs are scheduled at a fixed rate; a run that overruns skips the missed
    ticks rather than bunching them up. An exception is logged and the scan
    continues, as an EPICS periodic scan does. A scan of a sub-device runs
    with the sub-device as ``self``.
    """
    if not isinstance(period, int | float) or isinstance(period, bool) or period <= 0:
        raise IOCDefinitionError(f"scan(period={period!r}): period must be a positive number "
                                 "of seconds")

    def decorate(fn: M) -> M:
        check_async_method(fn, "scan", ())
        setattr(fn, HOOK_ATTR, ("scan", float(period)))
        return fn

    return decorate


def startup(fn: M) -> M:
    """Run ``async def method(self)`` once before the IOC starts serving.

    Startup hooks run parent first, then its sub-devices (including those the
    parent's hook added); a hook may add PVs and sub-devices.
    """
    check_async_method(fn, "startup hook", ())
    setattr(fn, HOOK_ATTR, ("startup", None))
    return fn


def shutdown(fn: M) -> M:
    """Run ``async def method(self)`` once when the IOC stops (after puts are closed);
    sub-devices' shutdown hooks run before their parent's."""
    check_async_method(fn, "shutdown hook", ())
    setattr(fn, HOOK_ATTR, ("shutdown", None))
    return fn
