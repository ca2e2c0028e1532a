"""Periodic scans: fixed-rate loops that survive exceptions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..errors import DeviceError

log = logging.getLogger(__name__)


async def run_scan(name: str, method: Callable[[], Awaitable[None]], period: float) -> None:
    """Await ``method`` every ``period`` s; overruns skip ticks, errors are logged.

    A :class:`~podioc.errors.DeviceError` (device gone, no reply) is logged
    as one line when a streak of them starts and when it ends, not as a
    traceback every period: the PVs' COMM alarm shows it to clients.
    """
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    failures = 0
    device_failures = 0
    while True:
        try:
            await method()
            if device_failures:
                log.info("scan %s works again after %d device errors", name, device_failures)
                device_failures = 0
        except asyncio.CancelledError:
            raise
        except DeviceError as exc:
            device_failures += 1
            log.log(logging.WARNING if device_failures == 1 else logging.DEBUG,
                    "scan %s: %s", name, exc)
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
