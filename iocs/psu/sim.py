"""A simulated multi-channel programmable power supply speaking SCPI on TCP.

Usage: ``python iocs/psu/sim.py --port N [--channels 4] [--control-port M]``.
Prints ``psu sim listening on N control M`` once it listens.

Device port (``\\n``-terminated lines; queries answer one line, settings none):
- ``*IDN?`` -> ``PODIOC,PSU-SIM,0,1.0``; ``SYST:CHAN?`` -> the channel count
- ``VOLT 12.5,(@3)`` sets channel 3 (0..30 V); ``VOLT? (@3)`` -> its setpoint
- ``MEAS:VOLT? (@3)`` -> its output voltage (the setpoint while the output is on, else 0)
- ``OUTP ON,(@3)`` / ``OUTP OFF,(@3)``; ``OUTP? (@3)`` -> ``1`` or ``0``
- ``SYST:INTL?`` -> ``1`` while the interlock is tripped (settings are then refused)
- ``SYST:ERR?`` -> the oldest queued error (``0,"No error"`` when none)

Control port (for tests; one line each, answered ``OK ...``): ``DROP`` (close
device connections), ``DOWN``/``UP`` (stop/start listening: connection
refused), ``STALL``/``RESUME`` (stop/start answering), ``INTERLOCK 1|0``,
``VMAX volts`` (the device's own limit, 30 V), ``PANEL ch volts`` (front-panel
change), ``STATUS?`` (``OK interlock=0 volt=1:0,2:0 outp=1:0,2:0 clients=1``).
SIGUSR1 drops the connections too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal

CHANNEL = re.compile(r"^\(@(\d+)\)$")


class PowerSupply:
    """The simulated device's state and its misbehaviour switches."""

    def __init__(self, port: int, channels: int) -> None:
        self.port = port
        self.volts = dict.fromkeys(range(1, channels + 1), 0.0)
        self.output = dict.fromkeys(range(1, channels + 1), False)
        self.interlock = False
        self.max_volts = 30.0
        self.errors: list[str] = []
        self.stalled = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def listen(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", self.port,
                                                 reuse_address=True)

    def channel(self, text: str) -> int | None:
        match = CHANNEL.match(text.strip())
        if match is None or int(match[1]) not in self.volts:
            self.errors.append(f'-224,"Illegal channel {text.strip()}"')
            return None
        return int(match[1])

    def setting(self, command: str, args: str) -> None:
        value, _, where = args.rpartition(",")
        channel = self.channel(where)
        if channel is None:
            return
        if self.interlock:
            self.errors.append('-221,"Settings conflict; interlock tripped"')
        elif command == "VOLT":
            try:
                volts = float(value)
            except ValueError:
                self.errors.append(f'-224,"Illegal parameter value {value}"')
                return
            if not 0.0 <= volts <= self.max_volts:
                self.errors.append('-222,"Data out of range"')
            else:
                self.volts[channel] = volts
        elif value.strip().upper() in ("ON", "1", "OFF", "0"):
            self.output[channel] = value.strip().upper() in ("ON", "1")
        else:
            self.errors.append(f'-224,"Illegal parameter value {value}"')

    def answer(self, line: str) -> str | None:
        """The reply to one command line (``None`` for a setting)."""
        command, _, args = line.partition(" ")
        command = command.upper()
        if command == "*IDN?":
            return "PODIOC,PSU-SIM,0,1.0"
        if command == "SYST:CHAN?":
            return str(len(self.volts))
        if command == "SYST:INTL?":
            return "1" if self.interlock else "0"
        if command == "SYST:ERR?":
            return self.errors.pop(0) if self.errors else '0,"No error"'
        if command in ("VOLT?", "MEAS:VOLT?", "OUTP?"):
            channel = self.channel(args)
            if channel is None:
                return "ERR"
            if command == "OUTP?":
                return "1" if self.output[channel] else "0"
            on = self.output[channel] or command == "VOLT?"
            return f"{self.volts[channel] if on else 0.0:.3f}"
        if command in ("VOLT", "OUTP"):
            self.setting(command, args)
            return None
        self.errors.append(f'-113,"Undefined header {command}"')
        return None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while line := await reader.readline():
                if self.stalled:
                    continue
                reply = self.answer(line.decode(errors="replace").strip())
                if reply is not None:
                    writer.write(reply.encode() + b"\n")
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def drop(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def control(self, line: str) -> str:
        word, _, arg = line.partition(" ")
        if word == "DROP":
            self.drop()
        elif word == "DOWN":
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
                self.server = None
            self.drop()
        elif word == "UP":
            if self.server is None:
                await self.listen()
        elif word in ("STALL", "RESUME"):
            self.stalled = word == "STALL"
        elif word == "INTERLOCK":
            self.interlock = arg.strip() == "1"
        elif word == "VMAX":
            self.max_volts = float(arg)
        elif word == "PANEL":
            channel, volts = arg.split()
            self.volts[int(channel)] = float(volts)
        elif word == "STATUS?":
            volt = ",".join(f"{n}:{v:g}" for n, v in self.volts.items())
            outp = ",".join(f"{n}:{int(v)}" for n, v in self.output.items())
            return (f"OK interlock={int(self.interlock)} volt={volt} outp={outp} "
                    f"clients={len(self.writers)}")
        else:
            return f"ERR unknown control command {line!r}"
        return "OK"

    async def serve_control(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                try:
                    reply = await self.control(line.decode().strip())
                except (ValueError, KeyError) as exc:
                    reply = f"ERR {exc!r}"
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--control-port", type=int, default=0, help="0: no control port")
    parser.add_argument("--setpoint", type=float, default=0.0, help="initial volts, all channels")
    args = parser.parse_args()
    device = PowerSupply(args.port, args.channels)
    device.volts = dict.fromkeys(device.volts, args.setpoint)
    await device.listen()
    control = None
    if args.control_port:
        control = await asyncio.start_server(device.serve_control, "127.0.0.1",
                                             args.control_port, reuse_address=True)
    print(f"psu sim listening on {args.port} control {args.control_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, device.drop)
    await stop.wait()
    if control is not None:
        control.close()
    device.drop()


if __name__ == "__main__":
    asyncio.run(main())
