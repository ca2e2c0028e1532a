"""A simulated heater with a noisy thermometer, a spectrum and every PV type podioc has."""

from __future__ import annotations

import math
import random
import time

import numpy as np

from podioc import IOC, PutRefused, pv, scan, startup


class DemoDevice(IOC):
    """Simulated temperature controller with a first-order response.

    The temperature follows the setpoint when the mode is HEAT or COOL and
    drifts to ambient when OFF; SPECTRUM is a noisy peak whose centre
    follows the temperature.
    """

    setpoint = pv.float(25.0, units="degC", precision=2, limits=(0.0, 150.0),
                        writable=True, autosave=True, description="Heater setpoint")
    temperature = pv.float(25.0, units="degC", precision=2, display_limits=(0.0, 150.0),
                           alarm=pv.Alarm(lolo=5.0, low=10.0, high=80.0, hihi=100.0),
                           description="Measured temperature")
    mode = pv.enum(["OFF", "HEAT", "COOL"], "HEAT", writable=True, autosave=True,
                   description="Controller mode")
    enabled = pv.bool(True, states=("Disabled", "Enabled"), writable=True,
                      description="Output enable")
    gain = pv.int(10, units="%", limits=(0, 100), writable=True, autosave=True,
                  description="Loop gain")
    label = pv.string("demo heater", writable=True, autosave=True,
                      description="Operator label")
    status = pv.string("starting", description="Controller status")
    spectrum = pv.waveform(1024, dtype="float64", units="counts", precision=1,
                           description="Simulated spectrum")
    samples = pv.int(0, description="Scan count")

    def __init__(self, prefix: str = "", *, ambient: float = 20.0, noise: float = 0.05) -> None:
        super().__init__(prefix)
        self.ambient = ambient
        self.noise = noise
        self._axis = np.linspace(0.0, 150.0, type(self).spectrum.max_length)

    @setpoint.validator
    async def _check_setpoint(self, value: float) -> float | None:
        if self.mode.value == "COOL" and value > self.temperature.value:
            raise PutRefused("in COOL mode the setpoint must not be above the temperature")
        return None

    @startup
    async def _begin(self) -> None:
        self.status.value = "running"
        self._last = time.monotonic()

    @scan(period=0.1)
    async def _step(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        target = self.ambient
        if self.enabled.value and self.mode.value != "OFF":
            target = self.setpoint.value
        tau = 2.0 / max(self.gain.value, 1) * 10
        temp = self.temperature.value
        temp += (target - temp) * (1 - math.exp(-dt / tau))
        self.temperature.value = temp + random.gauss(0.0, self.noise)
        peak = 1000.0 * np.exp(-0.5 * ((self._axis - temp) / 5.0) ** 2)
        self.spectrum.value = peak + np.random.default_rng().normal(0.0, 5.0, peak.size)
        self.samples.value = self.samples.value + 1
