"""Servers under test, one per process: ``python servers.py KIND --n N --prefix P``.

Every server serves the same PVs: ``P:S0`` .. ``P:S{N-1}`` (scalar doubles),
``P:COUNTER`` (double, posted by the counter run), ``P:PUT`` (writable double)
and ``P:WAVE`` (1,000,000 float64). Ports and interfaces come from the EPICS_*
environment the runner sets. The runner talks to the server over stdin/stdout,
one JSON object per line:

    <- {"ready": true [, "pid": P, "t_spawn": monotonic]}   serving; a wrapper (cioc)
       names the process measured and when it was spawned
    -> {"cmd": "prepare"}   last set-up before measures  <- {"prepared": true}
    -> {"cmd": "counter", "rate": 0 | Hz, "duration": s, "base": B}
       posts B+1, B+2, ... to COUNTER, then answers
    <- {"posted": M, "base": B, "t_start": monotonic, "t_end": monotonic}
    -> {"cmd": "quit"}                                      exit (EOF does the same)

``rate`` 0 posts as fast as the server can (yielding to its event loop after
every post so that it can send); otherwise one value per 1/rate s. ``cioc`` is
EPICS base's softIocPVA behind a wrapper (see cioc.py for how it differs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from counter import Post, counter_run, counter_run_thread
from wire import emit, parse_command

WAVE_LENGTH = 1_000_000


async def command_loop(post: Post, stop: asyncio.Event) -> None:
    """Read runner commands from stdin (in a thread) and run them in the loop."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=reader, daemon=True).start()
    while True:
        cmd = parse_command(await lines.get())
        if cmd is None:
            break
        if cmd["cmd"] == "prepare":
            emit({"prepared": True})
        elif cmd["cmd"] == "counter":
            emit(await counter_run(post, float(cmd["rate"]), float(cmd["duration"]),
                                   int(cmd.get("base", 0))))
    stop.set()


def wave_data() -> np.ndarray[Any, Any]:
    return np.arange(WAVE_LENGTH, dtype=np.float64)


# -- podioc ---------------------------------------------------------------------------
async def serve_podioc(prefix: str, n: int, pvi: str | None = "PVI") -> None:
    from podioc import IOC, pv
    from podioc.runtime.server import Runtime
    from podioc.runtime.settings import Settings

    class Bench(IOC):
        counter = pv.float(0.0, name="COUNTER", precision=0)
        put = pv.float(0.0, name="PUT", writable=True)
        wave = pv.waveform(WAVE_LENGTH, dtype="float64", name="WAVE")

        def __init__(self, prefix: str = "", n: int = 0) -> None:
            super().__init__(prefix)
            for i in range(n):
                # writable, as the C IOC's ao records and caproto's ChannelDouble are
                # (catime puts to S0: a refused put costs the client an exception print)
                self.add_pv(pv.float(0.0, name=f"S{i}", writable=True))

    ioc = Bench(prefix + ":", n)
    ioc.wave.set(wave_data())
    runtime = Runtime(ioc, Settings.from_env(os.environ), ("ca", "pva"), health=True, pvi=pvi)
    stop = asyncio.Event()

    async def post(i: int) -> None:
        ioc.counter.set(i)

    task = asyncio.create_task(runtime.run(stop))
    await runtime.ready.wait()
    emit({"ready": True})
    await command_loop(post, stop)
    await task


async def serve_podioc_nopvi(prefix: str, n: int) -> None:
    """podioc without its PVI PV (to measure what PVI costs)."""
    await serve_podioc(prefix, n, pvi=None)


# -- raw caproto ----------------------------------------------------------------------
async def serve_caproto(prefix: str, n: int) -> None:
    from caproto import ChannelDouble
    from caproto.asyncio.server import Context

    pvdb: dict[str, Any] = {f"{prefix}:S{i}": ChannelDouble(value=0.0) for i in range(n)}
    counter = ChannelDouble(value=0.0)
    pvdb[f"{prefix}:COUNTER"] = counter
    pvdb[f"{prefix}:PUT"] = ChannelDouble(value=0.0)
    pvdb[f"{prefix}:WAVE"] = ChannelDouble(value=wave_data(), max_length=WAVE_LENGTH)
    interfaces = os.environ.get("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1").split()
    ctx = Context(pvdb, interfaces)
    stop = asyncio.Event()
    bound = asyncio.Event()

    async def on_bound(_lib: Any) -> None:
        bound.set()

    async def post(i: int) -> None:
        await counter.write(float(i))

    task = asyncio.create_task(ctx.run(startup_hook=on_bound))
    await bound.wait()
    emit({"ready": True})
    await command_loop(post, stop)
    task.cancel()


# -- raw p4p --------------------------------------------------------------------------
async def serve_p4p(prefix: str, n: int) -> None:
    from p4p.nt import NTScalar
    from p4p.server import Server
    from p4p.server.asyncio import SharedPV

    scalar = NTScalar("d")
    pvs: dict[str, Any] = {f"{prefix}:S{i}": SharedPV(nt=scalar, initial=0.0)
                           for i in range(n)}
    counter = SharedPV(nt=scalar, initial=0.0)
    put = SharedPV(nt=scalar, initial=0.0)

    @put.put  # type: ignore[misc]
    async def on_put(pv: Any, op: Any) -> None:
        pv.post(op.value(), timestamp=time.time())
        op.done()

    pvs[f"{prefix}:COUNTER"] = counter
    pvs[f"{prefix}:PUT"] = put
    pvs[f"{prefix}:WAVE"] = SharedPV(nt=NTScalar("ad"), initial=wave_data())
    conf = {k: v for k, v in os.environ.items() if k.startswith("EPICS_PVA")}
    stop = asyncio.Event()

    async def post(i: int) -> None:
        counter.post(float(i), timestamp=time.time())

    with Server(providers=[pvs], conf=conf, useenv=False):
        emit({"ready": True})
        await command_loop(post, stop)


# -- pythonSoftIOC --------------------------------------------------------------------
def serve_softioc(prefix: str, n: int) -> None:
    from softioc import asyncio_dispatcher, builder, softioc

    dispatcher = asyncio_dispatcher.AsyncioDispatcher()
    builder.SetDeviceName(prefix)
    for i in range(n):
        builder.aIn(f"S{i}", initial_value=0.0)
    counter = builder.aIn("COUNTER", initial_value=0.0)
    builder.aOut("PUT", initial_value=0.0, always_update=True)
    builder.WaveformIn("WAVE", initial_value=wave_data())
    builder.LoadDatabase()
    softioc.iocInit(dispatcher)
    emit({"ready": True})
    for line in sys.stdin:
        cmd = parse_command(line)
        if cmd is None:
            break
        if cmd["cmd"] == "prepare":
            emit({"prepared": True})
        elif cmd["cmd"] == "counter":
            emit(counter_run_thread(lambda i: counter.set(float(i)), float(cmd["rate"]),
                                    float(cmd["duration"]), int(cmd.get("base", 0))))
    sys.stdout.flush()
    os._exit(0)  # epicsExit from a non-IOC thread can hang; nothing is left to flush


# -- EPICS base softIocPVA (C) -------------------------------------------------------
def serve_cioc(prefix: str, n: int) -> None:
    from cioc import serve_cioc as serve

    serve(prefix, n, WAVE_LENGTH)


SERVERS: dict[str, Callable[[str, int], Any]] = {
    "podioc": serve_podioc, "podioc-nopvi": serve_podioc_nopvi, "caproto": serve_caproto,
    "p4p": serve_p4p, "softioc": serve_softioc, "cioc": serve_cioc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--n", type=int, required=True, help="number of scalar PVs")
    parser.add_argument("--prefix", required=True, help="PV name prefix (no colon)")
    args = parser.parse_args()
    serve = SERVERS[args.kind]
    if asyncio.iscoroutinefunction(serve):
        asyncio.run(serve(args.prefix, args.n))
    else:
        serve(args.prefix, args.n)


if __name__ == "__main__":
    main()
