"""A multi-channel programmable power supply on TCP, speaking SCPI (iocs/psu/sim.py simulates it).

The channel count is asked of the device at start-up (``SYST:CHAN?``), so
the IOC serves ``CH1:`` .. ``CHn:``, each with VOLTAGE (setpoint, written to
the device), VOLTAGE_RBV (measured, scanned) and OUTPUT (enable). INTERLOCK
shows the device's interlock; while it is tripped, puts to the channels are
refused. Every device PV follows the connection (``DeviceLink``): INVALID/COMM
and puts refused while the device is away; re-read when it is back.
"""

from __future__ import annotations

from podioc import IOC, Device, DeviceVector, PutRefused, pv, scan, shutdown, startup
from podioc.io import DeviceLink, DeviceProtocolError, TcpConnection


class Channel(Device):
    """One output of the supply; ``number`` is its SCPI channel number."""

    voltage = pv.float(0.0, units="V", precision=3, limits=(0.0, 30.0), writable=True,
                       description="Voltage setpoint")
    voltage_rbv = pv.float(0.0, units="V", precision=3, description="Measured voltage")
    output = pv.bool(False, states=("OFF", "ON"), writable=True, description="Output enable")

    def __init__(self, supply: PowerSupply) -> None:
        super().__init__()
        self.supply = supply

    @property
    def at(self) -> str:
        """The SCPI channel list naming this channel: ``(@3)``."""
        return f"(@{self.number})"

    @voltage.validator
    async def _check_voltage(self, value: float) -> None:
        self.supply.refuse_if_interlocked(f"CH{self.number}:VOLTAGE")

    @output.validator
    async def _check_output(self, value: bool) -> None:
        self.supply.refuse_if_interlocked(f"CH{self.number}:OUTPUT")

    @voltage.on_put
    async def _write_voltage(self, value: float) -> None:
        await self._write(f"VOLT {value:g},{self.at}")

    @output.on_put
    async def _write_output(self, value: bool) -> None:
        await self._write(f"OUTP {'ON' if value else 'OFF'},{self.at}")

    async def _write(self, command: str) -> None:
        """Send a setting; if the device refuses it, show what the device kept."""
        try:
            await self.supply.setting(command)
        except DeviceProtocolError:
            await self.read_settings()
            raise

    async def read_settings(self) -> None:
        """Re-read the setpoint and output state from the device."""
        self.voltage.value = await self.supply.device.request(f"VOLT? {self.at}", parse=float)
        self.output.value = await self.supply.device.request(f"OUTP? {self.at}") == "1"


class PowerSupply(IOC):
    """A SCPI power supply whose channels are discovered at start-up."""

    interlock = pv.bool(False, states=("OK", "TRIPPED"), description="Device interlock")
    connected = pv.bool(False, states=("DISCONNECTED", "CONNECTED"),
                        description="Device connection")
    channels = pv.int(0, description="Channels reported by the device")
    identity = pv.string("", description="The device's *IDN? reply (first 39 bytes)")
    ch: DeviceVector[Channel]

    def __init__(self, prefix: str = "", *, host: str = "127.0.0.1", port: int = 5025,
                 timeout: float = 1.0, startup_wait: float = 10.0) -> None:
        super().__init__(prefix)
        self.startup_wait = startup_wait
        self.device = TcpConnection(host, port, name="psu", timeout=timeout, probe="*IDN?")
        self.link = DeviceLink(self.device, [self.interlock], connected=self.connected,
                               refresh=self._refresh)

    def refuse_if_interlocked(self, what: str) -> None:
        """Refuse a put while the interlock is tripped, naming the PV."""
        if self.interlock.value:
            raise PutRefused(f"{what}: interlock tripped: settings are refused until the "
                             "device's interlock is reset")

    async def setting(self, command: str) -> None:
        """Send a setting and check the device's error queue for it."""
        await self.device.send(command)
        error = await self.device.request("SYST:ERR?")
        if not error.startswith("0,"):
            raise DeviceProtocolError(f"{command!r} refused by the device: {error}")

    async def _refresh(self) -> None:
        """Re-read everything after each (re)connection, before the alarms clear."""
        self.identity.value = self.device.identity.encode()[:39].decode(errors="ignore")
        self.interlock.value = await self.device.request("SYST:INTL?") == "1"
        for channel in getattr(self, "ch", {}).values():
            await channel.read_settings()

    @startup
    async def _discover(self) -> None:
        """Connect, ask the channel count and add the channels (before serving)."""
        await self.device.start()
        await self.device.wait_connected(self.startup_wait)
        count = await self.device.request("SYST:CHAN?", parse=int)
        if not 1 <= count <= 64:
            raise DeviceProtocolError(f"{self.device}: SYST:CHAN? answered {count}: "
                                      "expected 1 to 64 channels")
        self.channels.value = count
        self.ch = self.add_vector("ch", [Channel(self) for _ in range(count)])
        for channel in self.ch.values():
            for live in (channel.voltage, channel.voltage_rbv, channel.output):
                self.link.add(live)
            await channel.read_settings()

    @scan(period=0.5)
    async def _poll(self) -> None:
        self.interlock.value = await self.device.request("SYST:INTL?") == "1"
        for channel in self.ch.values():
            channel.voltage_rbv.value = await self.device.request(
                f"MEAS:VOLT? {channel.at}", parse=float)

    @shutdown
    async def _disconnect(self) -> None:
        await self.device.close()
