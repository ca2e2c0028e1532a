"""A temperature controller on a serial line (iocs/tempctl/sim.py simulates it on a pty).

``args: loops`` control loops, declared with ``pv.vector``, serve
``LOOP1:`` .. ``LOOPn:``: TEMPERATURE (K, scanned by each loop, with alarm
limits), HEATER (%), SETPOINT (K, written to the device and read back) and
RANGE (heater range). Every device PV follows the serial connection
(``DeviceLink``): INVALID/COMM and puts refused while the controller does
not answer or the adapter is gone; re-read when it is back.
"""

from __future__ import annotations

from podioc import IOC, Device, PutRefused, pv, scan, shutdown, startup
from podioc.io import DeviceLink, DeviceProtocolError, SerialConnection

RANGES = ["OFF", "LOW", "MEDIUM", "HIGH"]


class Loop(Device):
    """One control loop; ``number`` is its channel on the controller."""

    temperature = pv.float(0.0, units="K", precision=3, description="Measured temperature",
                           alarm=pv.Alarm(high=350.0, hihi=380.0))
    heater = pv.float(0.0, units="%", precision=1, description="Heater output")
    setpoint = pv.float(290.0, units="K", precision=3, limits=(0.0, 400.0), writable=True,
                        description="Temperature setpoint")
    range = pv.enum(RANGES, "OFF", writable=True, description="Heater range")

    @property
    def controller(self) -> TempController:
        """The IOC this loop belongs to."""
        parent = self.parent
        if not isinstance(parent, TempController):
            raise TypeError(f"loop {self.number} is not part of a TempController")
        return parent

    @setpoint.on_put
    async def _write_setpoint(self, value: float) -> None:
        port = self.controller.port
        await port.send(f"SETP {self.number},{value:.3f}")
        got = await port.request(f"SETP? {self.number}", parse=float)
        if abs(got - value) > 0.0005:
            raise DeviceProtocolError(f"LOOP{self.number}:SETPOINT: the controller kept "
                                      f"{got} K, not {value} K")

    @range.validator
    async def _check_range(self, value: str) -> None:
        if value != "OFF" and self.setpoint.value > 350.0:
            raise PutRefused(f"LOOP{self.number}:RANGE: lower SETPOINT below 350 K "
                             "before switching the heater on")

    @range.on_put
    async def _write_range(self, value: str) -> None:
        await self.controller.port.send(f"RANGE {self.number},{RANGES.index(value)}")

    async def read_back(self) -> None:
        """Read the loop's settings from the controller."""
        port = self.controller.port
        self.setpoint.value = await port.request(f"SETP? {self.number}", parse=float)
        index = await port.request(f"RANGE? {self.number}", parse=int)
        if not 0 <= index < len(RANGES):
            raise DeviceProtocolError(f"RANGE? {self.number} answered {index}")
        self.range.value = RANGES[index]

    @scan(period=0.5)
    async def _poll(self) -> None:
        port = self.controller.port
        self.temperature.value = await port.request(f"KRDG? {self.number}", parse=float)
        self.heater.value = await port.request(f"HTR? {self.number}", parse=float)


class TempController(IOC):
    """A multi-loop temperature controller behind a serial port."""

    loop = pv.vector(Loop, count="loops")
    connected = pv.bool(False, states=("DISCONNECTED", "CONNECTED"),
                        description="Controller connection")

    def __init__(self, prefix: str = "", *, device: str = "/dev/ttyUSB0", loops: int = 2,
                 baudrate: int = 57600, timeout: float = 1.0) -> None:
        super().__init__(prefix)
        self.port = SerialConnection(device, baudrate, name="tempctl", framing="\r\n",
                                     timeout=timeout, probe="*IDN?")
        linked = [live for one in self.loop.values()
                  for live in (one.temperature, one.heater, one.setpoint, one.range)]
        self.link = DeviceLink(self.port, linked, connected=self.connected,
                               refresh=self._refresh)

    async def _refresh(self) -> None:
        for one in self.loop.values():
            await one.read_back()

    @startup
    async def _connect(self) -> None:
        await self.port.start()

    @shutdown
    async def _disconnect(self) -> None:
        await self.port.close()
