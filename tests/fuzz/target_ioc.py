"""The IOC the access, load and fuzz tests run (``podioc run target_ioc.py:Target``).

- RO: read-only float; RW, ALLOWED, DENIED, BYHOST, HIDDEN, CLAIMED, OPS:
  writable floats (the access tests put each in its own access group);
- TICKS: counts up every ``tick`` seconds (monitors always have news);
- BIG: a ``big``-element float64 waveform rewritten every ``big_period`` s
  (0: never), for slow-subscriber tests;
- X00000...: ``extra`` more writable floats, for many-channel load tests.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

from podioc import IOC, pv, shutdown, startup


class Target(IOC):
    """Plain PVs for access, load and fuzz tests."""

    ro = pv.float(1.0, name="RO", description="Read-only")
    rw = pv.float(0.0, name="RW", writable=True)
    allowed = pv.float(0.0, name="ALLOWED", writable=True)
    denied = pv.float(0.0, name="DENIED", writable=True)
    byhost = pv.float(0.0, name="BYHOST", writable=True)
    hidden = pv.float(0.0, name="HIDDEN", writable=True)
    claimed = pv.float(0.0, name="CLAIMED", writable=True)
    ops = pv.float(0.0, name="OPS", writable=True)
    label = pv.string("label", name="LABEL", writable=True)
    ticks = pv.int(0, name="TICKS")
    wave = pv.waveform(16, [1.0, 2.0], dtype="float64", name="WAVE", writable=True)

    def __init__(self, prefix: str = "", *, extra: int = 0, big: int = 1024,
                 big_period: float = 0.0, tick: float = 0.1) -> None:
        super().__init__(prefix)
        self.big = self.add_pv(pv.waveform(big, dtype="float64", name="BIG"), "big")
        self.extra = [self.add_pv(pv.float(float(i), name=f"X{i:05d}", writable=True))
                      for i in range(extra)]
        self.tick = tick
        self.big_period = big_period
        self._tasks: list[asyncio.Task[None]] = []

    @startup
    async def _begin(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._ticker()))
        if self.big_period > 0:
            self._tasks.append(asyncio.get_running_loop().create_task(self._big_loop()))

    @shutdown
    async def _end(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.ticks.value = self.ticks.value + 1

    async def _big_loop(self) -> None:
        n = self.big.spec.max_length
        k = 0
        while True:
            await asyncio.sleep(self.big_period)
            k += 1
            self.big.value = np.full(n, float(k))
