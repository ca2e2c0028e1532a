"""Decorators for IOC methods, checked when the class is defined."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import IOCDefinitionError

F = TypeVar("F", bound=Callable[..., Any])

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
    if not inspect.iscoroutinefunction(fn):
        raise IOCDefinitionError(
            f"{where(fn)}: {role} {fn.__name__!r} must be 'async def', "
            f"with signature ({', '.join(('self', *params))})")
    sig = inspect.signature(fn)
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required_extra = [p for p in sig.parameters.values()
                      if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(positional) != 1 + len(params) or required_extra:
        raise IOCDefinitionError(
            f"{where(fn)}: {role} {fn.__name__!r} has signature {sig}; "
            f"expected ({', '.join(('self', *params))})")


def scan(period: float) -> Callable[[F], F]:
    """Run the decorated ``async def method(self)`` every ``period`` seconds.

    Runs are scheduled at a fixed rate; a run that overruns skips the missed
    ticks rather than bunching them up. An exception is logged and the scan
    continues, as an EPICS periodic scan does.
    """
    if not isinstance(period, int | float) or isinstance(period, bool) or period <= 0:
        raise IOCDefinitionError(f"scan(period={period!r}): period must be a positive number "
                                 "of seconds")

    def decorate(fn: F) -> F:
        check_async_method(fn, "scan", ())
        setattr(fn, HOOK_ATTR, ("scan", float(period)))
        return fn

    return decorate


def startup(fn: F) -> F:
    """Run ``async def method(self)`` once before the IOC starts serving."""
    check_async_method(fn, "startup hook", ())
    setattr(fn, HOOK_ATTR, ("startup", None))
    return fn


def shutdown(fn: F) -> F:
    """Run ``async def method(self)`` once when the IOC stops (after puts are closed)."""
    check_async_method(fn, "shutdown hook", ())
    setattr(fn, HOOK_ATTR, ("shutdown", None))
    return fn
