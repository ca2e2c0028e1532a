"""``podioc monitor`` used as a person would: in a terminal (tmux), keys sent, screen read.

Each test runs its own tmux server on a private socket (``tmux -L NAME``) and
kills that server, by name, at the end. The monitor finds the demo IOC from its
prefix alone (its PVI PV) with the IOC's EPICS_PVA_* settings.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from harness import IocProcess, base_env, free_ports, poll_until, require_or_skip
from harness.testiocs import DEMO_YAML

IocFactory = Callable[..., IocProcess]


class Tmux:
    """One detached tmux session on a private server."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"podioc-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, text=True,
                              capture_output=True, check=check, timeout=30)

    def start(self, command: list[str]) -> None:
        self.tmux("new-session", "-d", "-s", "main", "-x", "150", "-y", "45",
                  subprocess.list2cmdline(command))

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "main", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "main").stdout

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "main", check=False).returncode == 0

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def terminal(ioc_factory: IocFactory) -> Iterator[tuple[Tmux, IocProcess]]:
    if shutil.which("tmux") is None:
        require_or_skip("tmux", "tmux is not installed (apt-get install tmux)")
    ioc = ioc_factory(DEMO_YAML, name="demo")
    env = base_env()
    env.update(ioc.pva_conf())
    env.update({"TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"})
    term = Tmux(env)
    term.start([sys.executable, "-m", "podioc", "monitor", ioc.prefix])
    try:
        yield term, ioc
    finally:
        term.kill()


def _row(screen: str, name: str) -> list[str]:
    """The cells of the table row of PV ``name`` (split on whitespace, without the
    writable mark ``*``), or []."""
    for line in screen.splitlines():
        cells = [c for c in line.replace("│", " ").split() if c != "*"]
        if cells and cells[0] == name:
            return cells
    return []


def test_values_update_filter_and_puts(terminal: tuple[Tmux, IocProcess]) -> None:
    term, ioc = terminal
    heartbeat = ioc.pv("HEARTBEAT")
    first = poll_until(lambda: "NO_ALARM" in (row := _row(term.screen(), heartbeat)) and row,
                       timeout=60, message="the monitor shows HEARTBEAT's first update")
    poll_until(lambda: (row := _row(term.screen(), heartbeat)) and row[1] != first[1],
               timeout=20, message="HEARTBEAT's value changes on screen")
    poll_until(lambda: _row(term.screen(), ioc.pv("TEMPERATURE"))[2:4] == ["degC", "NO_ALARM"],
               timeout=20, message="TEMPERATURE shows its units and severity")

    term.send("/")  # then wait for the prompt, as a person would, before typing
    poll_until(lambda: "name contains" in term.screen(), timeout=20, message="filter prompt")
    term.send("SETPOINT", "Enter")
    poll_until(lambda: not _row(term.screen(), heartbeat), timeout=20,
               message="the filter hides HEARTBEAT")
    assert _row(term.screen(), ioc.pv("SETPOINT"))

    term.send("p")
    poll_until(lambda: "new value for" in term.screen(), timeout=20, message="put prompt")
    term.send("500", "Enter")
    refused = poll_until(lambda: "outside the limits 0 .. 150" in term.screen(), timeout=20,
                         message="the refused put's message is shown")
    assert refused
    assert _row(term.screen(), ioc.pv("SETPOINT"))[1] != "500.00"

    term.send("p")
    poll_until(lambda: "new value for" in term.screen(), timeout=20, message="put prompt")
    term.send("42", "Enter")
    poll_until(lambda: (row := _row(term.screen(), ioc.pv("SETPOINT"))) and row[1] == "42.00",
               timeout=20, message="an accepted put shows the new value")

    term.send("q")
    poll_until(lambda: not term.alive(), timeout=20, message="q quits the monitor")


def test_unknown_prefix_is_reported() -> None:
    server, broadcast = free_ports(2)  # nothing listens there: searches stay on loopback
    env = base_env()
    env.update({"EPICS_PVA_ADDR_LIST": "127.0.0.1", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
                "EPICS_PVA_SERVER_PORT": str(server), "EPICS_PVA_BROADCAST_PORT": str(broadcast)})
    proc = subprocess.run([sys.executable, "-m", "podioc", "monitor", "NOSUCH:", "--timeout",
                           "1"], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "no answer from the PVI PV NOSUCH:PVI within 1 s" in proc.stderr
