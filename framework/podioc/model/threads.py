"""Changes made from other threads: run on the IOC's event-loop thread, caller waits.

The protocol adapters and autosave subscribe to the model and expect to be
called on the event loop's thread. Once an IOC is bound to its loop
(:meth:`podioc.IOC.bind_loop`, which the runtime calls before the startup
hooks), a change from any other thread is handed to the loop and the calling
thread blocks until it is applied. The model itself runs no loop and opens no
socket: it only needs the two loop methods named in :class:`Loop`.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, Protocol

#: Seconds a change from another thread waits for the event loop to apply it.
FOREIGN_SET_TIMEOUT = 10.0


class Loop(Protocol):
    """What the model needs of the event loop (an asyncio loop has both)."""

    def call_soon_threadsafe(self, callback: Callable[[], object], /) -> Any: ...

    def is_running(self) -> bool: ...


class Home:
    """The event loop that owns an IOC's state, and the thread that runs it."""

    __slots__ = ("loop", "thread_id", "timeout")

    def __init__(self, loop: Loop, timeout: float = FOREIGN_SET_TIMEOUT) -> None:
        """Bind to ``loop``; must be called on the thread that runs it."""
        self.loop = loop
        self.thread_id = threading.get_ident()
        self.timeout = timeout

    def run(self, pv_name: str, change: Callable[[], None]) -> None:
        """Run ``change`` on the loop thread and wait until it has run.

        Called from another thread. Raises :class:`RuntimeError` when the loop
        does not run (the IOC stopped) and :class:`TimeoutError` when it did not
        get to the change within ``timeout`` s; either way nothing changed.
        """
        thread = threading.current_thread().name
        stopped = (f"{pv_name}: set from thread {thread!r} while the IOC's event loop is "
                   f"not running (the IOC has stopped); stop threads that set PVs in a "
                   f"@shutdown hook")
        if not self.loop.is_running():
            raise RuntimeError(stopped)
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def apply() -> None:
            if not done.set_running_or_notify_cancel():
                return  # the caller gave up waiting: change nothing
            try:
                change()
            except BaseException as exc:
                done.set_exception(exc)  # raised in the calling thread
                if not isinstance(exc, Exception):
                    raise  # e.g. KeyboardInterrupt: the loop must see it too
            else:
                done.set_result(None)

        try:
            self.loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the loop closed meanwhile
            raise RuntimeError(stopped) from None
        try:
            done.result(self.timeout)
        except concurrent.futures.TimeoutError:
            if not done.cancel():  # it started just now: let it finish
                done.result()
                return
            if not self.loop.is_running():
                raise RuntimeError(stopped) from None
            raise TimeoutError(
                f"{pv_name}: set from thread {thread!r} was not applied within "
                f"{self.timeout:g} s, so the value is unchanged: the IOC's event loop is "
                f"blocked or busy. Don't block the loop while waiting for this thread "
                f"(join it with `await asyncio.to_thread(thread.join)`)") from None
