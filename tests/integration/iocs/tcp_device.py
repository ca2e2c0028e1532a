"""A test IOC for a device on TCP (tests/integration/sims/simdevice.py), for test_device_link.py.

READING is polled every 0.2 s; SETPOINT is written to the device on put and
re-read from it on every (re)connection (REFRESHES counts those re-reads).
Both follow the connection: INVALID/COMM and puts refused while it is down.
CONNECTED shows the state.
"""

from __future__ import annotations

from podioc import IOC, pv, scan, shutdown, startup
from podioc.io import DeviceLink, DeviceProtocolError, TcpConnection


class TcpDevice(IOC):
    """A one-channel device behind a line protocol on TCP."""

    reading = pv.float(0.0, units="V", precision=3, description="Measured value")
    setpoint = pv.float(0.0, units="V", precision=3, limits=(-100.0, 100.0), writable=True,
                        description="Setpoint (written to the device)")
    connected = pv.bool(False, states=("DISCONNECTED", "CONNECTED"),
                        description="Device connection")
    refreshes = pv.int(0, description="Re-reads of the device after a (re)connection")

    def __init__(self, prefix: str = "", *, port: int, host: str = "127.0.0.1",
                 timeout: float = 0.5) -> None:
        super().__init__(prefix)
        self.device = TcpConnection(host, port, name="sim", timeout=timeout, probe="*IDN?")
        self.link = DeviceLink(self.device, [self.reading, self.setpoint],
                               connected=self.connected, refresh=self._refresh)

    async def _refresh(self) -> None:
        self.setpoint.value = await self.device.request("SET?", parse=float)
        self.reading.value = await self.device.request("MEAS?", parse=float)
        self.refreshes.value += 1

    @setpoint.on_put
    async def _write(self, value: float) -> None:
        answer = await self.device.request(f"SET {value:g}")
        if answer != "OK":
            raise DeviceProtocolError(f"SET {value:g} answered {answer!r}")

    @scan(period=0.2)
    async def _poll(self) -> None:
        self.reading.value = await self.device.request("MEAS?", parse=float)

    @startup
    async def _connect(self) -> None:
        await self.device.start()

    @shutdown
    async def _disconnect(self) -> None:
        await self.device.close()
