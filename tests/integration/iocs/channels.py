"""A test IOC whose PV names group into devices: a vector of channels and a stage.

- ``CH1:`` .. ``CH<channels>:`` (default 3), each with VOLTAGE (read-only,
  follows GAIN x channel number), GAIN (writable float 0..10) and NAME (writable
  string): PVI serves them as the vector ``ch``;
- ``STAGE:X`` and ``STAGE:Y`` (writable floats in mm): the group ``stage``;
- ``TOTAL`` (read-only, the sum of the voltages) at the top.
"""

from __future__ import annotations

from podioc import IOC, pv, scan


class Channels(IOC):
    """Channels and a stage, grouped by PV name segments."""

    stage_x = pv.float(0.0, name="STAGE:X", units="mm", precision=3, writable=True,
                       description="Stage X")
    stage_y = pv.float(0.0, name="STAGE:Y", units="mm", precision=3, writable=True,
                       description="Stage Y")
    total = pv.float(0.0, name="TOTAL", units="V", precision=3, description="Sum of voltages")

    def __init__(self, prefix: str = "", channels: int = 3) -> None:
        super().__init__(prefix)
        self.channels = channels
        for n in range(1, channels + 1):
            self.add_pv(pv.float(0.0, name=f"CH{n}:VOLTAGE", units="V", precision=3,
                                 description=f"Channel {n} voltage"))
            self.add_pv(pv.float(1.0, name=f"CH{n}:GAIN", limits=(0.0, 10.0), writable=True,
                                 description=f"Channel {n} gain"))
            self.add_pv(pv.string(f"channel {n}", name=f"CH{n}:NAME", writable=True,
                                  description=f"Channel {n} name"))

    @scan(period=0.1)
    async def follow(self) -> None:
        total = 0.0
        for n in range(1, self.channels + 1):
            volts = self.pvs[f"{self.prefix}CH{n}:GAIN"].value * n
            self.pvs[f"{self.prefix}CH{n}:VOLTAGE"].value = volts
            total += volts
        self.total.value = total
