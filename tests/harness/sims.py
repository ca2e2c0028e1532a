"""Device simulator processes for device-connection tests.

```python
with SimProcess() as sim:          # tests/integration/sims/simdevice.py on free ports
    sim.port, sim.control("STALL"), sim.kill(), sim.start()   # restart on the same port
```
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .ioc_process import base_env
from .ports import free_ports

SIMDEVICE = Path(__file__).resolve().parent.parent / "integration" / "sims" / "simdevice.py"


class SimProcess:
    """A simulator subprocess on fixed ports (chosen free once, kept across restarts)."""

    def __init__(self, script: Path = SIMDEVICE, *, setpoint: float = 1.0,
                 log_dir: Path | None = None, args: Sequence[str] = ()) -> None:
        self.script = script
        self.setpoint = setpoint
        self.args = list(args)  # more command-line arguments for the script
        self.port, self.control_port = free_ports(2)
        directory = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.log_path = directory / f"sim-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> SimProcess:
        """Start (or restart) the simulator and wait until it listens."""
        assert not self.alive(), "simulator already running"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.script), "--port", str(self.port),
                 "--control-port", str(self.control_port), "--setpoint", str(self.setpoint),
                 *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**base_env(), "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while b"listening on" not in self.log_path.read_bytes()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start:\n{self.log_text()}")
            time.sleep(0.02)
        return self

    def alive(self) -> bool:
        """True while the simulator process runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the simulator (a device that dies without closing anything cleanly)."""
        if self.proc is not None and self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM the simulator (by PID), SIGKILL if it does not exit."""
        if self.proc is None or not self.alive():
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def control(self, command: str, timeout: float = 5.0) -> str:
        """Send one control command (see simdevice.py); its reply line."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as s:
            s.sendall(command.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(1024)
                if not chunk:
                    break
                reply += chunk
        text = reply.decode().strip()
        if not text.startswith("OK"):
            raise AssertionError(f"simulator control {command!r}: {text!r}")
        return text

    def log_text(self) -> str:
        """What the simulator printed."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
