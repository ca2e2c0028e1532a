"""Work handed to a plain thread, with its outcome back on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


def in_daemon_thread(fn: Callable[[bytes], None], data: bytes,
                     name: str = "podioc-worker") -> asyncio.Future[None]:
    """Run ``fn(data)`` in a daemon thread (a stalled disk cannot block exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def target() -> None:
        error: BaseException | None = None
        try:
            fn(data)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
