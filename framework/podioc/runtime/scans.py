"""Periodic scans: fixed-rate loops that survive exceptions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_scan(name: str, method: Callable[[], Awaitable[None]], period: float) -> None:
    """Await ``method`` every ``period`` s; overruns skip ticks, errors are logged."""
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    failures = 0
    while True:
        try:
            await method()
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            if failures <= 3 or failures % 100 == 0:
                log.exception("scan %s failed (%d failures so far)", name, failures)
        next_tick += period
        now = loop.time()
        if next_tick < now:
            missed = int((now - next_tick) // period) + 1
            next_tick += missed * period
            log.debug("scan %s overran; skipped %d ticks", name, missed)
        await asyncio.sleep(next_tick - now)
