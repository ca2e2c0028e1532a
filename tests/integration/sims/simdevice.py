"""A tiny line-protocol device simulator that can be told to misbehave.

Usage: ``python simdevice.py --port N --control-port M [--setpoint X]``.
Prints ``simdevice listening on N control M`` once both ports listen.

Device port (one line per command, ``\\n``-terminated, one reply line each):
- ``*IDN?`` -> ``PODIOC,SIMDEVICE,0,1``
- ``MEAS?`` -> the reading (the setpoint plus the number of MEAS? so far / 1000)
- ``SET?`` -> the setpoint; ``SET x`` -> ``OK`` (sets it) or ``ERR bad value``
- anything else -> ``ERR unknown command``

Control port (one line per command, answered ``OK ...``):
- ``DROP``: close every device connection (keep listening)
- ``DOWN``: close them and stop listening (connection refused); ``UP``: listen again
- ``STALL``: stop answering (connections stay open); ``RESUME``: answer again
- ``SLOW s``: answer after ``s`` seconds (``SLOW 0``: at once)
- ``GARBAGE n``: send ``n`` bytes of noise without a terminator, once
- ``HALF``: the next reply is sent without its terminator, then the connection drops
- ``PANEL x``: change the setpoint from the "front panel"
- ``STATUS?``: ``OK clients=N requests=N setpoint=X``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal


class Device:
    """The simulated device's state and its misbehaviour switches."""

    def __init__(self, port: int, setpoint: float) -> None:
        self.port = port
        self.setpoint = setpoint
        self.reads = 0
        self.requests = 0
        self.stalled = False
        self.delay = 0.0
        self.half = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def listen(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", self.port,
                                                 reuse_address=True)

    def answer(self, line: str) -> str:
        self.requests += 1
        if line == "*IDN?":
            return "PODIOC,SIMDEVICE,0,1"
        if line == "MEAS?":
            self.reads += 1
            return f"{self.setpoint + self.reads / 1000:.3f}"
        if line == "SET?":
            return f"{self.setpoint:g}"
        if line.startswith("SET "):
            try:
                self.setpoint = float(line[4:])
            except ValueError:
                return "ERR bad value"
            return "OK"
        return "ERR unknown command"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while line := await reader.readline():
                if self.stalled:
                    continue
                if self.delay:
                    await asyncio.sleep(self.delay)
                reply = self.answer(line.decode(errors="replace").strip())
                if self.half:
                    self.half = False
                    writer.write(reply[: max(1, len(reply) // 2)].encode())
                    await writer.drain()
                    break
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
        elif word == "STALL":
            self.stalled = True
        elif word == "RESUME":
            self.stalled, self.delay = False, 0.0
        elif word == "SLOW":
            self.delay = float(arg)
        elif word == "GARBAGE":
            for writer in list(self.writers):
                writer.write(os.urandom(int(arg)).replace(b"\n", b"?"))
        elif word == "HALF":
            self.half = True
        elif word == "PANEL":
            self.setpoint = float(arg)
        elif word == "STATUS?":
            return (f"OK clients={len(self.writers)} requests={self.requests} "
                    f"setpoint={self.setpoint:g}")
        else:
            return f"ERR unknown control command {line!r}"
        return "OK"

    async def serve_control(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                writer.write((await self.control(line.decode().strip())).encode() + b"\n")
                await writer.drain()
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--setpoint", type=float, default=1.0)
    args = parser.parse_args()
    device = Device(args.port, args.setpoint)
    await device.listen()
    control = await asyncio.start_server(device.serve_control, "127.0.0.1", args.control_port,
                                         reuse_address=True)
    print(f"simdevice listening on {args.port} control {args.control_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    control.close()
    device.drop()


if __name__ == "__main__":
    asyncio.run(main())
