"""Run ``podioc run TARGET`` as a real subprocess with its own ports and prefix.

```python
with IocProcess("iocs/demo/demo.yaml", log_dir=tmp_path) as ioc:
    ioc.prefix, ioc.ca_port, ioc.pva_port, ioc.client_env(), ioc.pva_conf()
assert ioc.returncode == 0
```

The IOC gets explicit ``EPICS_*`` settings pinned to loopback and free ports.
Readiness is probed, as a client sees it: the process listens on the TCP
ports asked for, a CA client can create a channel to its HEARTBEAT PV and a
PVA client can read it (if caproto or pvxs moved to another port because ours
was taken meanwhile, the IOC is restarted on fresh ports). stdout and stderr
go to one log file, shown by the conftest in the report of a failing test.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .ports import free_ports, wait_ports_free
from .readiness import listening_ports, probe_ready

#: Every IocProcess alive in this test process (for failure reports and cleanup).
LIVE: list[IocProcess] = []

SERVING_RE = re.compile(
    r"serving (?P<count>\d+) PVs \(prefix '(?P<prefix>[^']*)'\): "
    r"CA port (?P<ca>\S+), PVA port (?P<pva>\S+)")

_counter = itertools.count(1)


class IocStartError(RuntimeError):
    """The IOC exited or did not become ready in time."""


def unique_prefix(stem: str = "T") -> str:
    """A PV prefix no other test (or test run) uses, e.g. ``T3a9f1c2-4:``."""
    return f"{stem}{uuid.uuid4().hex[:7]}-{next(_counter)}:"


def base_env() -> dict[str, str]:
    """The parent environment without any EPICS_* or PODIOC_* variable."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("EPICS_", "PODIOC_"))}


class IocProcess:
    """A ``podioc run`` subprocess; a context manager that starts and stops it.

    ``target`` is anything ``podioc run`` accepts. ``prefix`` defaults to a
    unique one (pass ``prefix=None`` with ``use_prefix=False`` to keep the
    config's). ``extra_env`` is added to the process environment (after the
    harness's EPICS_* settings, so a test can override one).
    """

    def __init__(self, target: str | Path, prefix: str | None = None, *,
                 use_prefix: bool = True, log_dir: Path | None = None,
                 extra_env: Mapping[str, str] | None = None,
                 extra_args: Sequence[str] = (), cwd: Path | None = None,
                 ready_timeout: float = 30.0, name: str = "ioc") -> None:
        self.target = str(target)
        self.prefix = (prefix if prefix is not None else unique_prefix()) if use_prefix else ""
        self.use_prefix = use_prefix
        self.extra_env = dict(extra_env or {})
        self.extra_args = list(extra_args)
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.name = name
        self.log_dir = Path(log_dir) if log_dir is not None else Path(
            os.environ.get("TMPDIR", "/tmp"))
        self.log_path = self.log_dir / f"{name}-{uuid.uuid4().hex[:8]}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.ca_port = self.pva_port = self.pva_bport = self.repeater_port = 0
        self.pv_count = 0
        self.stop_seconds: float | None = None
        self._log_offset = 0

    # -- environment -------------------------------------------------------
    def server_env(self) -> dict[str, str]:
        """The EPICS_* server settings of this IOC (give the same to ``podioc probe``)."""
        return {
            "EPICS_CA_SERVER_PORT": str(self.ca_port),
            "EPICS_CA_REPEATER_PORT": str(self.repeater_port),
            "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_PVA_SERVER_PORT": str(self.pva_port),
            "EPICS_PVA_BROADCAST_PORT": str(self.pva_bport),
            "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
            "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        }

    def client_env(self) -> dict[str, str]:
        """EPICS_* settings for a CA client (pyepics/libca or caproto) to find this IOC."""
        return {
            "EPICS_CA_ADDR_LIST": "127.0.0.1",
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_SERVER_PORT": str(self.ca_port),
            "EPICS_CA_REPEATER_PORT": str(self.repeater_port),
            "EPICS_CA_MAX_ARRAY_BYTES": "1000000",
            "EPICS_CA_CONN_TMO": "30",
        }

    def pva_conf(self) -> dict[str, str]:
        """Configuration for ``p4p.client.thread.Context('pva', conf=..., useenv=False)``."""
        return {
            "EPICS_PVA_ADDR_LIST": "127.0.0.1",
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_BROADCAST_PORT": str(self.pva_bport),
            "EPICS_PVA_SERVER_PORT": str(self.pva_port),
        }

    def command(self) -> list[str]:
        """The command line that starts the IOC."""
        cmd = [sys.executable, "-m", "podioc", "run", self.target]
        if self.use_prefix:
            cmd += ["--prefix", self.prefix]
        return cmd + self.extra_args

    # -- lifecycle ---------------------------------------------------------
    def start(self, attempts: int = 3) -> IocProcess:
        """Start and wait until ready; retry on fresh ports if one was taken meanwhile."""
        for attempt in range(attempts):
            self.ca_port, self.pva_port, self.pva_bport, self.repeater_port = free_ports(4)
            self._launch()
            try:
                moved = self._wait_ready()
            except IocStartError:
                self.stop(timeout=5.0)
                raise
            if not moved:
                self.pv_count = self._served_count()
                return self
            self.stop(timeout=5.0)
            if attempt == attempts - 1:
                raise IocStartError(f"IOC serves on other ports than asked for "
                                    f"({moved}):\n{self.log_text()}")
        raise AssertionError("unreachable")

    def restart(self, signum: int = signal.SIGTERM) -> IocProcess:
        """Stop the IOC and start it again on the same ports (clients that hold
        the port numbers see a disconnection, then reconnect)."""
        self.stop(signum)
        busy = wait_ports_free([self.ca_port, self.pva_port])
        if busy:
            raise IocStartError(f"ports {busy} still busy after the IOC stopped")
        self._launch()
        moved = self._wait_ready()
        if moved:
            raise IocStartError(f"restarted IOC serves on other ports ({moved})")
        return self

    def _launch(self) -> None:
        env = base_env()
        env.update(self.server_env())
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        env.update(self.extra_env)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"$ {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.cwd, start_new_session=True)
        self.returncode = None
        LIVE.append(self)

    def _wait_ready(self) -> str:
        """Poll until the IOC answers probes (''), or moved to other ports (which)."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise IocStartError(f"IOC exited with {self.proc.returncode} before serving:\n"
                                    f"{self.log_text()}")
            listening = listening_ports(self.pid)
            wanted = {self.ca_port, self.pva_port}
            if len(listening) >= 2 and not wanted <= listening:
                return f"listening on TCP {sorted(listening)}, asked for {sorted(wanted)}"
            if wanted <= listening and probe_ready(self):
                return ""
            if time.monotonic() > deadline:
                raise IocStartError(f"IOC not serving after {self.ready_timeout:.0f} s:\n"
                                    f"{self.log_text()}")
            time.sleep(0.05)

    def _served_count(self, timeout: float = 10.0) -> int:
        """The PV count the IOC reports in its "serving N PVs" line (0 if none)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = SERVING_RE.search(self.log_text(since=self._log_offset))
            if match:
                return int(match["count"])
            time.sleep(0.05)
        return 0

    @property
    def pid(self) -> int:
        """Process id of the IOC."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """True while the IOC process runs."""
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the IOC process (by PID)."""
        if self.alive():
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the process to exit; its exit code or None."""
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._forget()
        return self.returncode

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send ``signum``, wait, and SIGKILL by PID only if it does not exit in time.

        Records ``returncode`` (negative = killed by a signal) and
        ``stop_seconds`` (time from signal to exit).
        """
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            self._forget()
            return self.returncode
        start = time.monotonic()
        self.send_signal(signum)
        code = self.wait(timeout)
        if code is None:
            with open(self.log_path, "ab") as log:
                log.write(f"\n[harness] no exit {timeout} s after signal {signum}; "
                          "SIGKILL\n".encode())
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.returncode = self.proc.returncode
            self._forget()
        self.stop_seconds = time.monotonic() - start
        return self.returncode

    def _forget(self) -> None:
        if self in LIVE:
            LIVE.remove(self)

    # -- diagnostics -------------------------------------------------------
    def log_text(self, since: int = 0) -> str:
        """What the IOC wrote to stdout and stderr so far (from byte offset ``since``)."""
        try:
            return self.log_path.read_bytes()[since:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Poll the log until ``pattern`` (a regex) appears; fail with the log otherwise."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in the IOC log after {timeout} s:\n"
                                     f"{self.log_text()}")
            time.sleep(0.05)

    def pv(self, suffix: str) -> str:
        """The full name of a PV of this IOC."""
        return self.prefix + suffix

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> IocProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state: Any = "running" if self.alive() else f"exit {self.returncode}"
        return (f"IocProcess({self.target!r}, prefix={self.prefix!r}, ca={self.ca_port}, "
                f"pva={self.pva_port}, {state})")
