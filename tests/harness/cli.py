"""Run the real ``podioc`` command line (``python -m podioc``) in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .ioc_process import base_env
from .ports import free_ports


@dataclass
class CliResult:
    """Exit code, output and duration of one command."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


def isolated_env() -> dict[str, str]:
    """EPICS_* server settings on free loopback ports, so a command that serves by
    mistake never touches the default ports."""
    ca, pva, bport, rep = free_ports(4)
    return {"EPICS_CA_SERVER_PORT": str(ca), "EPICS_CA_REPEATER_PORT": str(rep),
            "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
            "EPICS_PVA_SERVER_PORT": str(pva), "EPICS_PVA_BROADCAST_PORT": str(bport),
            "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1"}


def podioc(args: Sequence[str], *, env: Mapping[str, str] | None = None,
           timeout: float = 60.0, cwd: Path | None = None) -> CliResult:
    """``python -m podioc ARGS`` with a clean environment plus ``env``
    (default: :func:`isolated_env`). Killed (by PID) after ``timeout`` s."""
    full_env = base_env()
    full_env.update(isolated_env() if env is None else env)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "podioc", *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
