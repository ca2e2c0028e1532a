"""Mistakes ``mypy --strict`` must report (see test_typing.py); excluded from the
project's own mypy run. Each line with an error ends with a marker comment."""

from __future__ import annotations

from podioc import IOC, pv, scan


class Typos(IOC):
    setpoint = pv.float(20.0, units="degC", writable=True)

    @scan(period=1.0)
    async def _typos(self) -> None:
        print(self.setpoint.valeu)  # ERROR-attr
        self.setpoint.value = "x"  # ERROR-assignment
