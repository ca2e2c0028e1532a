"""An IOC that floods its monitors on request (for tests/integration/test_ca_flood.py).

Put a number of seconds (at most 30) to FLOOD: COUNTER then counts up as fast
as the server can post (yielding to the event loop after every post, so the
servers can send), WAVE changes every 10th count, and when the time is up
DONE is set to the last COUNTER value. Another put while a flood runs is
ignored.
"""

from __future__ import annotations

import asyncio

import numpy as np

from podioc import IOC, pv


class Flood(IOC):
    """COUNTER, WAVE and DONE, flooded for FLOOD seconds."""

    counter = pv.float(0.0, name="COUNTER", precision=0)
    wave = pv.waveform(2000, dtype="float64", name="WAVE")
    flood = pv.float(0.0, name="FLOOD", limits=(0.0, 30.0), writable=True)
    done = pv.float(0.0, name="DONE", precision=0)

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self._task: asyncio.Task[None] | None = None

    @flood.on_put
    async def _start(self, seconds: float) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(seconds))

    async def _run(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        count = int(self.counter.value)
        while loop.time() < end:
            count += 1
            self.counter.value = count
            if count % 10 == 0:
                self.wave.value = np.full(2000, float(count))
            await asyncio.sleep(0)
        self.done.value = count
