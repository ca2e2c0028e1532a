"""Background tasks whose failure is logged when it happens.

asyncio reports an exception nobody awaited only when the task is garbage
collected ("Task exception was never retrieved"), often at shutdown, long
after the loop that died stopped serving. :func:`watch` logs it at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

log = logging.getLogger("podioc.tasks")

T = TypeVar("T", bound="asyncio.Future[Any]")


def watch(task: T, what: str | None = None) -> T:
    """Log ``task``'s exception (with traceback) as soon as it ends with one."""

    def done(finished: asyncio.Future[Any]) -> None:
        if finished.cancelled():
            return
        exc = finished.exception()
        if exc is not None:
            name = what or (finished.get_name() if isinstance(finished, asyncio.Task)
                            else repr(finished))
            log.error("background task %s failed", name, exc_info=exc)

    task.add_done_callback(done)
    return task
