"""A simulated temperature controller on a serial line (a pseudo-terminal).

Usage: ``python iocs/tempctl/sim.py --link /tmp/tempctl [--loops 2] [--control-port M]``.
Creates a pty pair, points the symlink ``--link`` at its slave side (open
that as the serial port) and prints ``tempctl sim listening on LINK control M``.

Serial protocol (``\\r\\n``-terminated lines; queries answer one line, settings none):
- ``*IDN?`` -> ``PODIOC,TEMPCTL-SIM,0,1.0``
- ``KRDG? n`` -> loop n's temperature in K; ``HTR? n`` -> its heater output in %
- ``SETP n,300.5`` / ``SETP? n``: the setpoint in K (0..400)
- ``RANGE n,r`` / ``RANGE? n``: heater range 0 (off) .. 3 (high)
Bad commands are ignored (as many such controllers do), so the IOC reads back.

The temperature moves towards the setpoint at up to 2 K/s per range step
while the heater is on and drifts towards 290 K when it is off.

Control port (for tests; one line each, answered ``OK ...``): ``STALL``/
``RESUME`` (stop/start answering), ``STATUS?`` (``OK setp=1:300,2:4.2
range=1:0,2:0``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tty
from pathlib import Path

AMBIENT = 290.0
TICK = 0.1


class Controller:
    """The simulated controller's loops, its pty and its misbehaviour switch."""

    def __init__(self, loops: int) -> None:
        self.temp = dict.fromkeys(range(1, loops + 1), AMBIENT)
        self.setp = dict.fromkeys(range(1, loops + 1), AMBIENT)
        self.range = dict.fromkeys(range(1, loops + 1), 0)
        self.heater = dict.fromkeys(range(1, loops + 1), 0.0)
        self.stalled = False
        self.buffer = b""
        self.master = self.slave = -1

    def open(self, link: Path) -> None:
        """Create the pty pair and point ``link`` at its slave side."""
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        tmp = link.with_name(link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(link)
        asyncio.get_running_loop().add_reader(self.master, self.readable)

    def readable(self) -> None:
        try:
            self.buffer += os.read(self.master, 4096)
        except OSError:
            return
        while b"\n" in self.buffer or b"\r" in self.buffer:
            cut = min(i for i in (self.buffer.find(b"\r"), self.buffer.find(b"\n")) if i >= 0)
            line, self.buffer = self.buffer[:cut], self.buffer[cut + 1:]
            text = line.decode(errors="replace").strip()
            if not text or self.stalled:
                continue
            reply = self.answer(text)
            if reply is not None:
                os.write(self.master, reply.encode() + b"\r\n")

    def loop_of(self, text: str) -> int | None:
        try:
            number = int(text)
        except ValueError:
            return None
        return number if number in self.temp else None

    def answer(self, line: str) -> str | None:
        command, _, args = line.partition(" ")
        command = command.upper()
        if command == "*IDN?":
            return "PODIOC,TEMPCTL-SIM,0,1.0"
        if command in ("KRDG?", "HTR?", "SETP?", "RANGE?"):
            n = self.loop_of(args)
            if n is None:
                return "0"
            values = {"KRDG?": f"{self.temp[n]:.3f}", "HTR?": f"{self.heater[n]:.1f}",
                      "SETP?": f"{self.setp[n]:.3f}", "RANGE?": str(self.range[n])}
            return values[command]
        which, _, value = args.partition(",")
        n = self.loop_of(which)
        with contextlib.suppress(ValueError):
            if n is not None and command == "SETP" and 0.0 <= float(value) <= 400.0:
                self.setp[n] = float(value)
            elif n is not None and command == "RANGE" and int(value) in range(4):
                self.range[n] = int(value)
        return None

    async def run(self) -> None:
        """Move the temperatures every ``TICK`` seconds."""
        while True:
            await asyncio.sleep(TICK)
            for n, temp in self.temp.items():
                if self.range[n]:
                    step = 2.0 * self.range[n] * TICK
                    error = self.setp[n] - temp
                    self.temp[n] = temp + max(-step, min(step, error))
                    self.heater[n] = max(0.0, min(100.0, 50.0 + 10.0 * error))
                else:
                    self.temp[n] = temp + (AMBIENT - temp) * 0.02
                    self.heater[n] = 0.0

    async def control(self, line: str) -> str:
        word = line.strip()
        if word in ("STALL", "RESUME"):
            self.stalled = word == "STALL"
            return "OK"
        if word == "STATUS?":
            setp = ",".join(f"{n}:{v:g}" for n, v in self.setp.items())
            ranges = ",".join(f"{n}:{v}" for n, v in self.range.items())
            return f"OK setp={setp} range={ranges}"
        return f"ERR unknown control command {line!r}"

    async def serve_control(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                writer.write((await self.control(line.decode())).encode() + b"\n")
                await writer.drain()
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--link", type=Path, required=True)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--control-port", type=int, default=0, help="0: no control port")
    args = parser.parse_args()
    device = Controller(args.loops)
    device.open(args.link)
    control = None
    if args.control_port:
        control = await asyncio.start_server(device.serve_control, "127.0.0.1",
                                             args.control_port, reuse_address=True)
    ticker = asyncio.get_running_loop().create_task(device.run())
    print(f"tempctl sim listening on {args.link} control {args.control_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    ticker.cancel()
    if control is not None:
        control.close()


if __name__ == "__main__":
    asyncio.run(main())
