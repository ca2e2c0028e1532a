"""The C reference IOC: EPICS base's ``softIocPVA`` serving the benchmark's workload.

A Python wrapper (``python servers.py cioc ...``) writes a database, starts
``softIocPVA`` with the runner's EPICS_* environment and speaks the runner's
JSON lines for it. Measures of "the server" (CPU, RSS) are taken on the
softIocPVA process, whose PID and spawn time the wrapper reports; start-up is
timed from that spawn, not from the wrapper's.

Records (``P`` the prefix):

- ``P:S0`` .. ``P:S{N-1}``, ``P:PUT``: ``ao`` (DOUBLE), value 0;
- ``P:WAVE``: ``waveform`` of 1,000,000 DOUBLE, filled with 0, 1, 2, ... by the
  wrapper when the runner sends ``prepare`` (one PVA put from a client that then
  leaves: a CA put would leave rsrv holding a receive buffer of
  EPICS_CA_MAX_ARRAY_BYTES for the rest of the run, which the RSS would show);
- ``P:COUNTER``: ``ao``, written and processed (so posted) by the counter runs.

Counter runs differ from the Python peers, whose own event loop posts:

- flood (rate 0): the IOC's own loop. ``P:LOOP`` (calcout) writes
  ``COUNTER + 1`` to ``P:COUNTER`` and forward-links ``P:AGAIN``, which, while
  ``P:RUN`` is 1, processes ``P:LOOP`` again through a CA link to itself (the
  link is asynchronous, so the chain does not recurse). Each post costs the IOC
  three record processings and one local CA-link put.
- paced (1 kHz, 5 kHz): EPICS base has no sub-10 ms timer for records (the
  timer queue's quantum is the 10 ms clock tick), and extra periodic scan rates
  (``.0002 second`` in menuScan) keep a thread waking 5,000 times a second even
  when idle (about 10 % CPU here), which would spoil the idle measure. So the
  wrapper paces: it writes ``B+1, B+2, ...`` to ``P:COUNTER`` with CA puts
  (libca through pyepics, no completion) on its own clock, like the
  pythonSoftIOC peer's thread. The IOC does more per post than a Python peer
  (it decodes a CA put first), so this favours the Python servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from counter import counter_run_thread
from epicsbase import find_base, unavailable
from wire import emit, parse_command

READY_LINE = "iocRun: All initialization complete"


def database(prefix: str, n: int, wave_length: int) -> str:
    """The benchmark's records, in EPICS database syntax."""
    p = prefix
    lines = [f'record(ao, "{p}:S{i}") {{}}' for i in range(n)]
    lines += [
        f'record(ao, "{p}:PUT") {{}}',
        f'record(ao, "{p}:COUNTER") {{}}',
        f'record(waveform, "{p}:WAVE") {{ field(FTVL, "DOUBLE") '
        f'field(NELM, "{wave_length}") }}',
        f'record(bo, "{p}:RUN") {{}}',
        f'record(calcout, "{p}:LOOP") {{ field(INPA, "{p}:COUNTER NPP") '
        f'field(CALC, "A+1") field(OUT, "{p}:COUNTER PP") field(FLNK, "{p}:AGAIN") }}',
        f'record(calcout, "{p}:AGAIN") {{ field(INPA, "{p}:RUN NPP") field(CALC, "A") '
        f'field(OOPT, "When Non-zero") field(OUT, "{p}:LOOP.PROC CA") }}',
    ]
    return "\n".join(lines) + "\n"


class CIoc:
    """One softIocPVA process, its output drained in a thread (the last lines kept)."""

    def __init__(self, prefix: str, n: int, wave_length: int, workdir: Path) -> None:
        base = find_base()
        if base is None:
            raise RuntimeError(unavailable("softIocPVA") or "EPICS base not found")
        db = workdir / "bench.db"
        db.write_text(database(prefix, n, wave_length))
        self.prefix, self.wave_length = prefix, wave_length
        self.tail: deque[str] = deque(maxlen=40)
        self.initialised = threading.Event()
        self.t_spawn = time.monotonic()
        # No -S: the IOC shell reads our pipe, so "exit" (or EOF) stops the IOC.
        self.proc = subprocess.Popen(
            [str(base.tool("softIocPVA")), "-D", str(base.dbd), "-d", str(db)],
            env=base.env(dict(os.environ)), cwd=workdir, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._drain, daemon=True).start()
        self._ca: Any = None

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.tail.append(line)
            if READY_LINE in line:
                self.initialised.set()

    def wait_initialised(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.initialised.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                state = (f"exited {self.proc.returncode}" if self.proc.poll() is not None
                         else f"not initialised after {timeout} s")
                raise RuntimeError(f"softIocPVA {state}:\n" + "".join(self.tail))

    # -- control over CA (pyepics) --------------------------------------------------
    def ca(self) -> Any:
        if self._ca is None:
            from epics import ca

            ca.initialize_libca()
            self._ca = ca
        return self._ca

    def chid(self, suffix: str) -> Any:
        ca = self.ca()
        chid = ca.create_channel(f"{self.prefix}:{suffix}", connect=False, auto_cb=False)
        if not ca.connect_channel(chid, timeout=10.0):
            raise RuntimeError(f"{self.prefix}:{suffix} of softIocPVA did not connect")
        return chid

    def prepare(self) -> dict[str, Any]:
        """Fill the waveform with 0, 1, 2, ...; connect the channels the counter uses."""
        import numpy as np
        from p4p.client.thread import Context

        conf = {k: v for k, v in os.environ.items() if k.startswith("EPICS_PVA")}
        ctx = Context("pva", conf=conf, useenv=False, nt=False)
        try:
            ctx.put(f"{self.prefix}:WAVE", np.arange(self.wave_length, dtype=np.float64),
                    timeout=30.0)
        finally:
            ctx.close()
        self.counter, self.run, self.loop = (self.chid(s) for s in ("COUNTER", "RUN", "LOOP.PROC"))
        return {"prepared": True}

    def counter_run(self, rate: float, duration: float, base: int) -> dict[str, Any]:
        ca = self.ca()
        ca.put(self.counter, float(base), wait=True)
        if rate:
            def post(i: int) -> None:
                ca.put(self.counter, float(i), wait=False)
                ca.flush_io()

            return counter_run_thread(post, rate, duration, base)
        ca.put(self.run, 1, wait=True)
        t_start = time.monotonic()
        ca.put(self.loop, 1, wait=False)
        ca.flush_io()
        time.sleep(duration)  # the IOC's own loop runs meanwhile
        ca.put(self.run, 0, wait=True)
        t_end = time.monotonic()
        last, deadline = None, time.monotonic() + 2.0
        while time.monotonic() < deadline:  # at most one step was already under way
            value = ca.get(self.counter, timeout=5.0)
            if value == last:
                break
            last = value
            time.sleep(0.01)
        return {"posted": int(last or base) - base, "base": base, "t_start": t_start,
                "t_end": t_end}

    def stop(self) -> None:
        """``exit`` to the IOC shell, then SIGTERM, then SIGKILL: this process only."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("exit\n")
            self.proc.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(OSError):
                    self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                continue


def serve_cioc(prefix: str, n: int, wave_length: int) -> None:
    """The wrapper's main: start the IOC, then answer the runner's commands."""
    with tempfile.TemporaryDirectory(prefix="podioc-bench-cioc-") as tmp:
        ioc = CIoc(prefix, n, wave_length, Path(tmp))
        try:
            ioc.wait_initialised(120.0)
            emit({"ready": True, "pid": ioc.proc.pid, "t_spawn": ioc.t_spawn})
            for line in sys.stdin:
                cmd = parse_command(line)
                if cmd is None:
                    break
                if cmd["cmd"] == "prepare":
                    emit(ioc.prepare())
                elif cmd["cmd"] == "counter":
                    emit(ioc.counter_run(float(cmd["rate"]), float(cmd["duration"]),
                                         int(cmd.get("base", 0))))
        except Exception as exc:
            emit({"error": f"{type(exc).__name__}: {exc}"})
            print("".join(ioc.tail), file=sys.stderr)
            raise
        finally:
            ioc.stop()
    sys.stdout.flush()
    os._exit(0)  # skip libca's teardown
