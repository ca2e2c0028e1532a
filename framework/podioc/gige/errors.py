"""Errors of the GigE Vision host; messages name the device, the register and what to do."""

from __future__ import annotations

from ..errors import PodiocError


class GigEError(PodiocError):
    """Base class of GigE Vision host errors."""


class GvcpTimeout(GigEError, TimeoutError):
    """The device did not acknowledge a GVCP command after every retry."""


class GvcpError(GigEError):
    """The device answered a GVCP command with a NACK (non-zero status)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class GenICamError(GigEError):
    """The device's GenICam XML cannot be read, parsed or lacks a feature."""
