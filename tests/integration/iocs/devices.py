"""A test IOC with sub-devices, a vector counted by an argument, and PVs built at run time
(for test_devices.py).

- ``ch``: ``channels`` identical :class:`Channel` devices (``CH1:`` ...). A
  channel's validator allows at most ``10 * n`` V on channel ``n``, its put hook
  sets ``CURRENT``, its scan counts ``POLLS``: each runs with the channel as ``self``.
- ``@startup`` asks the "hardware" (``sensors``, after an await) and adds a
  vector of :class:`Sensor` (``SENSOR1:`` ...), whose own startup hooks then
  set ``TEMP``, and a ``LIMIT`` PV with a validator (refuses negative values)
  and autosave.
- ``LATE_ERROR`` names the error adding a PV after serving started raised (the
  log has its message).
"""

from __future__ import annotations

import asyncio
import logging

from podioc import IOC, AlreadyServingError, Device, PutRefused, pv, scan, startup

log = logging.getLogger(__name__)


class Channel(Device):
    """One output: a setpoint, a readback set by the put hook, a scan counter."""

    voltage = pv.float(0.0, units="V", limits=(0, 100), writable=True)
    current = pv.float(0.0, units="A", precision=2)
    polls = pv.int(0)

    @voltage.validator
    async def _at_most(self, value: float) -> None:
        assert self.number is not None
        if value > 10 * self.number:
            raise PutRefused(f"channel {self.number} allows at most {10 * self.number} V")

    @voltage.on_put
    async def _drive(self, value: float) -> None:
        self.current.value = value / 10

    @scan(period=0.1)
    async def _poll(self) -> None:
        self.polls.value += 1


class Sensor(Device):
    """A sensor the IOC learns about at start-up."""

    temp = pv.float(0.0, units="degC")
    offset = pv.float(0.0, writable=True, autosave=True)

    @startup
    async def _first_reading(self) -> None:
        assert self.number is not None
        self.temp.value = 20.0 + self.number


class Rack(IOC):
    """Channels from the config's args; sensors and LIMIT from the 'hardware'."""

    ch = pv.vector(Channel, count="channels")
    late_error = pv.string("", name="LATE_ERROR")

    def __init__(self, prefix: str = "", *, channels: int = 2, sensors: int = 3) -> None:
        super().__init__(prefix)
        self._sensors = sensors

    @startup
    async def _discover(self) -> None:
        await asyncio.sleep(0)  # as if asking the device
        self.sensors = self.add_vector("sensor", [Sensor() for _ in range(self._sensors)])
        limit = self.add_pv(pv.float(5.0, name="LIMIT", writable=True, autosave=True))

        @limit.validator
        async def _not_negative(value: float) -> None:
            if value < 0:
                raise PutRefused("LIMIT must not be negative")

    @scan(period=0.2)
    async def _try_late(self) -> None:
        if self.late_error.value:
            return
        try:
            self.add_pv(pv.int(0, name="TOO_LATE"))
        except AlreadyServingError as exc:
            log.warning("adding a PV while serving: %s", exc)
            self.late_error.value = type(exc).__name__
