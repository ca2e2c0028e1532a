"""EPICS base's own CA benchmarks, run against a server: ``catime`` and ``acctst``.

- ``catime PV COUNT`` opens COUNT channels to one PV and times connecting, then
  batched async puts and gets (thousands of requests in one TCP message), sync
  gets and clearing, per DBR type. We keep its DBR_DOUBLE async put/get cost per
  operation, its connect cost per channel and the whole run's wall time.
- ``acctst PV 1`` is the CA client acceptance test; its first block (the
  ``{....}`` progress run before "Waiting for test channel to connect") adds and
  destroys thousands of subscriptions. We time the process start to that block's
  end, then stop acctst: the later tests need the server restarted.

Both run with the server's EPICS_* client settings and EPICS base's libraries,
each bounded by a deadline after which the process (ours, by PID) is killed;
a figure cut by the deadline is reported as the deadline with ``cut: true``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from typing import Any

from epicsbase import Base

PER_OP = re.compile(r"Per Op,\s+([0-9.]+) uS")


def _spawn(base: Base, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a tool with line-buffered output (stdbuf) so progress arrives as it happens."""
    command = [str(base.tool(args[0])), *args[1:]]
    if shutil.which("stdbuf"):
        command = ["stdbuf", "-o0", *command]
    return subprocess.Popen(command, env=base.env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


class _Output:
    """The tool's output, read in a thread, with when each chunk arrived."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.text = ""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while data := os.read(self.proc.stdout.fileno(), 65536):
            with self.lock:
                self.text += data.decode(errors="replace")

    def snapshot(self) -> str:
        with self.lock:
            return self.text


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the tool (only this PID) if it still runs, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def parse_catime(text: str) -> dict[str, float]:
    """Per-operation microseconds from catime's report (DBR_DOUBLE async put/get)."""
    out: dict[str, float] = {}
    section = test = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("Test") and not stripped.startswith("#"):
            section, test = stripped, ""
        elif stripped.startswith("###"):
            test = stripped.strip("# ").strip()
        elif (match := PER_OP.search(line)) is not None:
            value = float(match.group(1))
            if section == "Channel Connect Test":
                out["catime_connect_us_ca"] = value
            elif section == "DBR_DOUBLE Test" and test == "async put test":
                out["catime_put_us_ca"] = value
            elif section == "DBR_DOUBLE Test" and test == "async get test":
                out["catime_get_us_ca"] = value
            elif section == "DBR_DOUBLE Test" and test == "synch get test":
                out["catime_sync_get_us_ca"] = value
    return out


def run_catime(base: Base, env: dict[str, str], pv: str, channels: int,
               deadline: float) -> dict[str, Any]:
    """``catime pv channels``: its figures and total seconds (``cut`` at the deadline)."""
    start = time.monotonic()
    proc = _spawn(base, ["catime", pv, str(channels)], env)
    out = _Output(proc)
    try:
        proc.wait(timeout=deadline)
        cut = False
    except subprocess.TimeoutExpired:
        cut = True
    seconds = time.monotonic() - start
    _stop(proc)
    out.thread.join(timeout=5)
    return {"catime_total_s_ca": seconds, "cut": cut, "returncode": proc.returncode,
            **parse_catime(out.snapshot()), "output": out.snapshot()[-2000:]}


def run_acctst_first(base: Base, env: dict[str, str], pv: str,
                     deadline: float) -> dict[str, Any]:
    """Seconds from acctst's start to the end of its first test (``cut`` at the deadline)."""
    start = time.monotonic()
    proc = _spawn(base, ["acctst", pv, "1"], env)
    out = _Output(proc)
    done: float | None = None
    try:
        while time.monotonic() - start < deadline and proc.poll() is None:
            if "}" in out.snapshot():
                done = time.monotonic() - start
                break
            time.sleep(0.02)
    finally:
        _stop(proc)
    out.thread.join(timeout=5)
    text = out.snapshot()
    return {"acctst_first_s_ca": deadline if done is None else done, "cut": done is None,
            "output": text[-2000:]}
