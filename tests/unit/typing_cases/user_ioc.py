"""A user-style IOC that ``mypy --strict`` must pass (see test_typing.py).

Every line here is what a user writes: typed PVs of each kind, validators and
put hooks, a sub-device, a vector counted by an ``__init__`` argument, PVs
added in a startup hook, and values read into annotated variables so that a
wrong value type would be an error.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from podioc import IOC, PV, Device, DeviceVector, PutRefused, PVSpec, pv, scan, startup


class Channel(Device):
    """One output of a power supply."""

    voltage = pv.float(0.0, units="V", limits=(0, 30), writable=True)
    current = pv.float(0.0, units="A")
    output = pv.bool(False, writable=True)

    @voltage.validator
    async def _check(self, value: float) -> float | None:
        if self.output.value and value > 24.0:
            raise PutRefused("switch the output off above 24 V")
        return None

    @voltage.on_put
    async def _send(self, value: float) -> None:
        self.current.value = value / 10.0

    @scan(period=1.0)
    async def _poll(self) -> None:
        volts: float = self.voltage.value
        self.current.value = volts / 10.0


class PowerSupply(IOC):
    """A supply with N channels (N from the instance config's args)."""

    setpoint = pv.float(20.0, units="degC", precision=2, writable=True)
    mode = pv.enum(["OFF", "HEAT", "COOL"], "OFF", writable=True)
    gain = pv.int(10, limits=(0, 100), writable=True)
    label = pv.string("psu")
    trace = pv.waveform(100, dtype="float32")
    ch = pv.vector(Channel, count="channels")
    aux = pv.device(Channel, name="AUX")

    def __init__(self, prefix: str = "", *, channels: int = 4) -> None:
        super().__init__(prefix)
        self.temperatures: list[PV[float]] = []

    @setpoint.validator
    async def _limit(self, value: float) -> float | None:
        return min(value, 100.0)

    @mode.on_put
    async def _mode(self, value: str) -> None:
        self.label.value = value.lower()

    @startup
    async def _discover(self) -> None:
        for n in range(2):
            live = self.add_pv(pv.float(0.0, name=f"T{n}", writable=True))
            live.on_put(self._write_temperature)
            self.temperatures.append(live)

    async def _write_temperature(self, value: float) -> None:
        self.setpoint.value = value

    @scan(period=0.5)
    async def _step(self) -> None:
        self.setpoint.value += 0.1
        count: int = self.gain.value
        state: str = self.mode.value
        index: int = self.mode.index
        data: npt.NDArray[np.float32] = np.zeros(count, dtype=np.float32)
        self.trace.value = data
        channels: DeviceVector[Channel] = self.ch
        third: Channel = channels[3]
        third.voltage.value = float(len(state) + index)
        self.aux.output.value = True


spec: PVSpec[float] = PowerSupply.setpoint
vector_spec = PowerSupply.ch
