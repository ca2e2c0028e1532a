"""Exceptions users see. Each message says what was wrong, where, and what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class PodiocError(Exception):
    """Base class of every podioc error."""


class PutRefused(PodiocError):
    """A put was refused; the message is sent to the client and nothing changes.

    Raise it from a validator (``@mypv.validator``) to refuse a client's put.
    """


class IOCDefinitionError(PodiocError, TypeError):
    """An IOC class or PV declaration is inconsistent (raised when the class is defined)."""


class AlreadyServingError(PodiocError, RuntimeError):
    """A PV or sub-device was added after the IOC started serving (add them in
    ``__init__`` or a ``@startup`` hook)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config: the field (path), what is wrong, and the fix."""

    field: str
    problem: str
    fix: str = ""

    def line(self, source: str) -> str:
        """``source: field: problem (fix)``."""
        text = f"{source}: {self.field}: {self.problem}"
        return f"{text} ({self.fix})" if self.fix else text


class ConfigError(PodiocError, ValueError):
    """An instance config file or setting is invalid.

    ``source``, ``field``, ``problem`` and ``fix`` describe the first problem;
    ``problems`` holds every problem found (one line each in the message).
    """

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.field = field
        self.problem = problem
        self.fix = fix
        self.problems: tuple[Problem, ...] = (Problem(field, problem, fix),)
        super().__init__(self.problems[0].line(source))

    @classmethod
    def of(cls, source: str, problems: Sequence[Problem]) -> ConfigError:
        """One error reporting every problem in ``problems`` (at least one), a line each."""
        first = problems[0]
        error = cls(source, first.field, first.problem, first.fix)
        error.problems = tuple(problems)
        if len(problems) > 1:
            error.args = ("\n".join(p.line(source) for p in problems),)
        return error


class DeviceError(PodiocError, ConnectionError):
    """A device connection could not do what was asked (see :mod:`podioc.io`).

    The scan runner logs it as one line, not a traceback: a device that is
    gone is an expected condition, shown to clients by the PVs' COMM alarm.
    """


class DeviceNotConnected(DeviceError):
    """The device is not connected (refused, dropped, or not yet reached).

    Raised at once by a request made while disconnected, and by a request
    whose connection was lost while it waited for the reply.
    """


class DeviceTimeout(DeviceError, TimeoutError):
    """The device did not answer within the request's timeout."""


class DeviceProtocolError(DeviceError):
    """The device answered something that is not a valid reply (garbage)."""
