"""Drive ophyd-async's ``AravisDriverIO`` against a camera IOC, in its own process.

``python -m harness.ophyd_worker PREFIX`` (PREFIX like ``ca://T1:cam1:``; EPICS_*
from the environment): connects every declared signal, reads them all, writes a
few settings, runs a two-image acquisition and prints one JSON line of values.
A process of its own because the CA and PVA backends keep callbacks bound to
the event loop, which ``asyncio.run`` closes at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


async def exercise(prefix: str) -> dict[str, Any]:
    from ophyd_async.core import SignalR, init_devices
    from ophyd_async.epics.adaravis import AravisDriverIO
    from ophyd_async.epics.adcore import ADImageMode

    async with init_devices(connect=True, mock=False, timeout=20):
        driver = AravisDriverIO(prefix)
    values: dict[str, Any] = {}
    for name, signal in driver.children():
        if isinstance(signal, SignalR):
            values[name] = await signal.get_value()
    await driver.acquire_time.set(0.02)
    await driver.num_images.set(2)
    await driver.image_mode.set(ADImageMode.MULTIPLE)
    values["acquire_time_after"] = await driver.acquire_time.get_value()
    await driver.acquire.set(True)
    for _ in range(300):                      # bounded: at most ~15 s
        if not await driver.acquire.get_value():
            break
        await asyncio.sleep(0.05)
    values["array_counter_after"] = await driver.array_counter.get_value()
    values["acquire_after"] = await driver.acquire.get_value()
    await driver.acquire_time.set(0.01)
    await driver.image_mode.set(ADImageMode.CONTINUOUS)
    return values


if __name__ == "__main__":
    result = asyncio.run(exercise(sys.argv[1]))
    print(json.dumps({k: v if isinstance(v, bool | int | float) else str(v)
                      for k, v in result.items()}), flush=True)
