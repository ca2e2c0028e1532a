"""pvxs's report of its connections, read without holding the GIL.

``p4p.server.Server.tostr()`` holds the GIL while pvxs runs the report on its
TCP event loop and waits for it. That loop also calls into Python (channel
creation, puts, first connect), and waits for the GIL there: a thread calling
``tostr`` while a client creates a channel deadlocks the whole IOC (seen in
the fuzz tests; reproduced in a few seconds with one thread reporting and one
client creating channels). So the report is made by calling p4p's exported
C++ function ``p4p::toString(const pvxs::server::Server&, int)`` through
ctypes, which releases the GIL for the call.

This relies on p4p internals, listed in :data:`PRIVATE` and checked by
:func:`load` (and the unit tests) before the first call: if any does not hold,
no report is made (the buffer bound and the channel counts are off, with one
warning) rather than risking a crash.
"""

from __future__ import annotations

import ctypes
import logging
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)

#: The p4p internals this module relies on, and why each.
PRIVATE = (
    ("p4p.server.Server._S", "the extension's server object behind the Python wrapper"),
    ("p4p._p4p.Server layout", "its pvxs::server::Server (a shared_ptr) follows the object "
     "header: 16 bytes in, basic size 40 (header, server, weak-reference slot)"),
    ("p4p._p4p: _ZN3p4p8toStringERKN4pvxs6server6ServerEi",
     "p4p::toString(const Server&, int): the text of Server.tostr(), callable without GIL"),
    ("libstdc++ std::string, pre-C++11 ABI (_ZNSsD1Ev)",
     "p4p's wheels are built with it: the result is one pointer to the characters, "
     "with the length 24 bytes before them"),
)
#: p4p versions whose layout was checked.
SUPPORTED = ("4.2.", "4.3.")
_SYMBOL = "_ZN3p4p8toStringERKN4pvxs6server6ServerEi"
_OFFSET = 16
_BASICSIZE = 40


class Reporter:
    """``report(detail)``: the text of ``server.tostr(detail)``, made without the GIL."""

    def __init__(self, server: Any, to_string: Any, destroy: Any) -> None:
        self._server = server._S  # keeps the extension object (and its address) alive
        self._address = id(self._server) + _OFFSET
        self._to_string = to_string
        self._destroy = destroy

    def report(self, detail: int) -> str:
        result = (ctypes.c_void_p * 4)()  # one std::string (8 bytes), with room to spare
        self._to_string(ctypes.addressof(result), self._address, detail)
        chars = result[0] or 0
        try:
            length = ctypes.c_size_t.from_address(chars - 24).value
            return ctypes.string_at(chars, length).decode("utf-8", "replace")
        finally:
            self._destroy(ctypes.addressof(result))


def problem(server: Any) -> str:
    """Why :class:`Reporter` cannot be used with ``server`` ('' if it can)."""
    version = metadata.version("p4p")
    if not version.startswith(SUPPORTED):
        return f"p4p {version} is not one of the checked versions {SUPPORTED}"
    inner = getattr(server, "_S", None)
    if inner is None or type(inner).__basicsize__ != _BASICSIZE:
        return "p4p's server object has another layout"
    return ""


def load(server: Any) -> Reporter | None:
    """A reporter for ``server``, or None (logged) if p4p is not as expected."""
    reason = problem(server)
    if not reason:
        try:
            import p4p._p4p as extension

            to_string = getattr(ctypes.CDLL(extension.__file__), _SYMBOL)
            to_string.restype = ctypes.c_void_p
            to_string.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
            destroy = ctypes.CDLL("libstdc++.so.6")._ZNSsD1Ev
            destroy.argtypes = [ctypes.c_void_p]
            destroy.restype = None
        except (OSError, AttributeError, ImportError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            return Reporter(server, to_string, destroy)
    log.warning("PVA connection report unavailable (%s): the PVA buffer bound is off and "
                "PVA channels are not counted", reason)
    return None
