"""The counter runs: post B+1, B+2, ... for a while, flooded (rate 0) or paced.

A run's answer is ``{"posted": M, "base": B, "t_start": monotonic, "t_end": monotonic}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Post = Callable[[int], Awaitable[None]]


async def counter_run(post: Post, rate: float, duration: float,
                      base: int = 0) -> dict[str, Any]:
    """Post base+1, base+2, ... for ``duration`` seconds: flooded (rate 0) or paced."""
    n = 0
    t0 = time.monotonic()
    end = t0 + duration
    while (now := time.monotonic()) < end:
        if rate:
            due = int((now - t0) * rate)
            if n >= due:
                await asyncio.sleep((n + 1) / rate - (now - t0))
                continue
        n += 1
        await post(base + n)
        await asyncio.sleep(0)
    return {"posted": n, "base": base, "t_start": t0, "t_end": time.monotonic()}


def counter_run_thread(post: Callable[[int], None], rate: float, duration: float,
                       base: int = 0) -> dict[str, Any]:
    """``counter_run`` for servers whose records are set from a plain thread."""
    n = 0
    t0 = time.monotonic()
    end = t0 + duration
    while (now := time.monotonic()) < end:
        if rate:
            due = int((now - t0) * rate)
            if n >= due:
                time.sleep(max(0.0, (n + 1) / rate - (now - t0)))
                continue
        n += 1
        post(base + n)
    return {"posted": n, "base": base, "t_start": t0, "t_end": time.monotonic()}
