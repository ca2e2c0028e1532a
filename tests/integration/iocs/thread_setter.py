"""A test IOC whose PV is set by a plain thread (for test_thread_updates.py).

The startup hook starts a worker thread. A put of N to REQUEST hands N to the
thread (through a queue); the thread sets COUNT to N, reads COUNT back and
sets READBACK to what it read. The shutdown hook stops the thread and joins
it without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading

from podioc import IOC, pv, shutdown, startup


class ThreadSetter(IOC):
    """COUNT and READBACK are only ever set by a thread that is not the event loop."""

    request = pv.int(0, name="REQUEST", writable=True)
    count = pv.int(0, name="COUNT")
    readback = pv.int(0, name="READBACK")

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self._requests: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="setter", daemon=True)

    @request.on_put
    async def _hand_over(self, value: int) -> None:
        self._requests.put(value)

    @startup
    async def _start(self) -> None:
        self._thread.start()

    @shutdown
    async def _stop(self) -> None:
        self._requests.put(None)
        await asyncio.to_thread(self._thread.join)

    def _work(self) -> None:
        while (value := self._requests.get()) is not None:
            self.count.value = value
            self.readback.value = self.count.value
