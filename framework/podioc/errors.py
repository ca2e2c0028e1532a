"""Exceptions users see. Each message says what was wrong, where, and what to do."""

from __future__ import annotations


class PodiocError(Exception):
    """Base class of every podioc error."""


class PutRefused(PodiocError):
    """A put was refused; the message is sent to the client and nothing changes.

    Raise it from a validator (``@mypv.validator``) to refuse a client's put.
    """


class IOCDefinitionError(PodiocError, TypeError):
    """An IOC class or PV declaration is inconsistent (raised when the class is defined)."""


class ConfigError(PodiocError, ValueError):
    """An instance config file or setting is invalid."""

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"{source}: {field}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)
