"""Test IOCs for autosave: one autosaved PV of every kind, and a variant with new limits.

- ``AutosaveBasic``: LEVEL float (limits 0..100), COUNT int, MODE enum, ENABLED
  bool, LABEL string, TABLE float64 waveform (max 8) -- all writable and
  ``autosave=True`` -- plus SCRATCH (writable, not saved) and TICKS (a 0.1 s
  scan, not saved, to show IOC-code changes do not disturb anything).
  ``slow_shutdown`` (s): a shutdown hook that takes that long (to test the
  second-signal exit); it also sets MODE to OFF, which must *not* be saved.
- ``AutosaveNarrow``: the same with LEVEL's limits narrowed to 0..50, as if the
  class had been changed between two runs.
"""

from __future__ import annotations

import asyncio

from podioc import IOC, pv, scan, shutdown


class AutosaveBasic(IOC):
    """Every kind of PV, saved."""

    level = pv.float(10.0, units="mm", precision=3, limits=(0.0, 100.0), writable=True,
                     autosave=True)
    count = pv.int(0, writable=True, autosave=True)
    mode = pv.enum(["OFF", "HEAT", "COOL"], "OFF", writable=True, autosave=True)
    enabled = pv.bool(False, states=("Disabled", "Enabled"), writable=True, autosave=True)
    label = pv.string("initial", writable=True, autosave=True)
    table = pv.waveform(8, dtype="float64", writable=True, autosave=True)
    scratch = pv.float(0.0, writable=True)
    ticks = pv.int(0)

    def __init__(self, prefix: str = "", *, slow_shutdown: float = 0.0) -> None:
        super().__init__(prefix)
        self.slow_shutdown = slow_shutdown

    @scan(period=0.1)
    async def _tick(self) -> None:
        self.ticks.value = self.ticks.value + 1

    @shutdown
    async def _safe_state(self) -> None:
        self.mode.value = "OFF"  # a safe state for the device, not the operator's setting
        if self.slow_shutdown:
            await asyncio.sleep(self.slow_shutdown)


class AutosaveNarrow(AutosaveBasic):
    """LEVEL's limits narrowed to 0..50 (a class changed between runs)."""

    level = pv.float(10.0, units="mm", precision=3, limits=(0.0, 50.0), writable=True,
                     autosave=True)
