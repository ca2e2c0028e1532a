"""A small, fast-starting IOC process for the autosave kill -9 loop.

``python autosave_stress.py DIRECTORY PREFIX DEBOUNCE`` runs the real podioc
Runtime (restore, startup hooks, scans, autosave writer) without CA/PVA
servers, so it starts in a fraction of a second. A 1 ms scan puts COUNT+1 to
COUNT, then the matching TEXT, WAVE and LEVEL, through the same ``PV.put``
path a client uses. It prints, flushed, one line per event:

- ``READY {"status": ..., "count": n, "text": ..., "wave": [...], "level": x}``
  from a startup hook, i.e. after the restore and before the scan starts;
- ``ACCEPTED n`` after the puts of value n returned (accepted);
- ``SAVED n`` after a save holding value n is on disk.

The puts of one step do not yield to the event loop, so a save can never see
a half-finished step: every restored set must be consistent
(TEXT == f"n={COUNT}", WAVE == [COUNT] * 4, LEVEL == COUNT / 1000).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from podioc import IOC, pv, scan, startup
from podioc.autosave.service import Autosave
from podioc.autosave.settings import AutosaveSettings
from podioc.runtime.server import Runtime
from podioc.runtime.settings import Settings


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class AutosaveStress(IOC):
    """Values that change every millisecond through the client put path."""

    count = pv.int(0, writable=True, autosave=True)
    text = pv.string("n=0", writable=True, autosave=True)
    wave = pv.waveform(4, dtype="int32", initial=[0, 0, 0, 0], writable=True, autosave=True)
    level = pv.float(0.0, limits=(0.0, 1e9), writable=True, autosave=True)

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self.on_startup: Any = None

    @startup
    async def _started(self) -> None:  # after the restore, before the scan
        if self.on_startup is not None:
            self.on_startup()

    @scan(period=0.001)
    async def _step(self) -> None:
        n = self.count.value + 1
        await self.count.put(n)
        await self.text.put(f"n={n}")
        await self.wave.put([n] * 4)
        await self.level.put(n / 1000)
        emit(f"ACCEPTED {n}")


def state(ioc: AutosaveStress, autosave: Autosave) -> dict[str, Any]:
    return {"status": autosave.status, "count": ioc.count.value, "text": ioc.text.value,
            "wave": ioc.wave.value.tolist(), "level": ioc.level.value}


async def main(directory: str, prefix: str, debounce: float) -> None:
    ioc = AutosaveStress(prefix)
    autosave = Autosave(AutosaveSettings(directory=Path(directory), explicit_directory=True,
                                         debounce=debounce, period=1.0, generations=3,
                                         source="autosave_stress"))
    count_name = prefix + "COUNT"
    autosave.saved_hooks.append(lambda values: emit(f"SAVED {values[count_name]}"))
    ioc.on_startup = lambda: emit("READY " + json.dumps(state(ioc, autosave)))
    runtime = Runtime(ioc, Settings(), protocols=(), health=True, autosave=autosave)
    await runtime.run(asyncio.Event())  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
