"""Every p4p name podioc relies on beyond p4p's public API, in one place.

- ``p4p.server.asyncio.SharedPV.__init__`` takes the *running* event loop
  (``self.loop``) and makes ``self._disconnected``. podioc makes a PV's
  SharedPV when a client first asks for its name (:class:`.channels.Bindings`),
  in pvxs's thread, where no loop runs. :class:`LoopSharedPV` sets both
  attributes itself and runs the raw SharedPV's ``__init__``
  (``p4p.server.raw.SharedPV``); its handler's calls run in the loop.
- pvxs's connection report is read through p4p's C++ symbols: :mod:`.report`
  lists those (``report.PRIVATE``) and checks them before the first use.

``tests/unit/test_p4p_guard.py`` serves a :class:`LoopSharedPV` made in pvxs's thread
to a real client, so a p4p release that changes these fails that test.
Keep the p4p pin in ``pyproject.toml`` and widen it only when the test passes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from p4p.server.asyncio import SharedPV
from p4p.server.raw import SharedPV as RawSharedPV

#: The p4p internals used here, and why each.
PRIVATE = (
    ("p4p.server.asyncio.SharedPV.loop", "the loop its handler calls run in; set by "
     "__init__ from the running loop, which pvxs's thread has not"),
    ("p4p.server.asyncio.SharedPV._disconnected", "the event close(sync=True) waits on; "
     "made by __init__"),
    ("p4p.server.raw.SharedPV.__init__", "the rest of the asyncio SharedPV's __init__"),
    ("setuptools_dso.runtime._auto_pkg", "how p4p's library loaders find their caller's "
     "module; replaced before p4p's import by one that reads no source (leanimport.py)"),
)


class LoopSharedPV(SharedPV):  # type: ignore[misc]
    """p4p's asyncio SharedPV made in any thread, its handler's calls run in ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **kws: Any) -> None:
        self.loop = loop
        RawSharedPV.__init__(self, **kws)
        self._disconnected = asyncio.Event()
        self._disconnected.set()
