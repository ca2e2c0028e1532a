"""The example temperature controller IOC (iocs/tempctl) on a serial line to its simulator.

The simulator (iocs/tempctl/sim.py) runs as a process on a pseudo-terminal
behind a symlink; the IOC opens the symlink as its serial port. The test
talks to the IOC with pyepics (libca) and p4p: the loops from ``args``, a
setpoint reaching the controller and the temperature following, a refused
put, and the serial device killed and replugged (a new pty at the same path).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, PyepicsClient, pva_client
from harness.clients import time_until
from harness.ioc_process import base_env
from harness.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
TEMPCTL_IOC = ROOT / "iocs" / "tempctl" / "ioc.py"
TEMPCTL_SIM = ROOT / "iocs" / "tempctl" / "sim.py"
LOOPS = 3


class PtySim:
    """The simulator process; ``link`` is its serial port (stable across restarts)."""

    def __init__(self, directory: Path) -> None:
        self.link = directory / "tempctl-tty"
        self.log = directory / "tempctl-sim.log"
        (self.control_port,) = free_ports(1)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> PtySim:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(TEMPCTL_SIM), "--link", str(self.link), "--loops",
                 str(LOOPS), "--control-port", str(self.control_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**base_env(), "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while b"listening on" not in self.log.read_bytes()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start:\n{self.log.read_text()}")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL (by PID): the pty disappears, as when a USB adapter is pulled."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def control(self, command: str) -> str:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall(command.encode() + b"\n")
            reply = s.makefile().readline().strip()
        assert reply.startswith("OK"), reply
        return reply

    def status(self, key: str) -> dict[int, str]:
        """One field of STATUS? by loop number (``setp`` or ``range``)."""
        field = dict(i.split("=", 1) for i in self.control("STATUS?").split()[1:])[key]
        return {int(n): v for n, v in (p.split(":") for p in field.split(","))}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PtySim]:
    process = PtySim(tmp_path_factory.mktemp("tempctl-sim")).start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def ioc(module_ioc_factory: Any, sim: PtySim,
        tmp_path_factory: pytest.TempPathFactory) -> IocProcess:
    config = tmp_path_factory.mktemp("tempctl") / "tempctl.yaml"
    config.write_text(f"ioc: {TEMPCTL_IOC}:TempController\nprefix: 'TEMP:'\n"
                      f"args:\n  device: {sim.link}\n  loops: {LOOPS}\n  timeout: 0.5\n")
    process: IocProcess = module_ioc_factory(config, name="tempctl")
    return process


@pytest.fixture(scope="module")
def pva(ioc: IocProcess) -> Iterator[Any]:
    with pva_client(ioc, nt=False) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def pyepics(ioc: IocProcess) -> Iterator[PyepicsClient]:
    with PyepicsClient(ioc) as client:
        yield client


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll ``condition()`` every 20 ms; seconds until it held."""
    return time_until(condition, timeout, what, interval=0.02)


def severity(pva: Any, ioc: IocProcess, name: str) -> int:
    return int(pva.get(ioc.pv(name), timeout=5)["alarm"]["severity"])


def connected(pva: Any, ioc: IocProcess) -> None:
    wait_for(lambda: severity(pva, ioc, f"LOOP{LOOPS}:SETPOINT") == 0, 15, "connected")


def test_setpoint_reaches_the_controller_and_temperature_follows(
        ioc: IocProcess, pva: Any, sim: PtySim, pyepics: PyepicsClient) -> None:
    connected(pva, ioc)
    assert pyepics.get(ioc.pv("LOOP2:SETPOINT"))["value"] == 290.0  # read from the device
    with pytest.raises(TimeoutError):
        pva.get(ioc.pv(f"LOOP{LOOPS + 1}:SETPOINT"), timeout=1)
    pyepics.put(ioc.pv("LOOP2:SETPOINT"), 293.5)
    assert sim.status("setp")[2] == "293.5"
    pva.put(ioc.pv("LOOP2:RANGE"), "HIGH", timeout=5)
    assert sim.status("range")[2] == "3"
    wait_for(lambda: abs(pyepics.get(ioc.pv("LOOP2:TEMPERATURE"))["value"] - 293.5) < 0.01,
             15, "TEMPERATURE reaches the setpoint")
    assert float(pva.get(ioc.pv("LOOP1:TEMPERATURE"), timeout=5)["value"]) == 290.0
    pva.put(ioc.pv("LOOP2:RANGE"), "OFF", timeout=5)


def test_heater_refused_above_350_k_on_both_protocols(ioc: IocProcess, pva: Any,
                                                      sim: PtySim,
                                                      pyepics: PyepicsClient) -> None:
    connected(pva, ioc)
    pva.put(ioc.pv("LOOP1:SETPOINT"), 360.0, timeout=5)
    with pytest.raises(RemoteError, match="LOOP1:RANGE: lower SETPOINT below 350 K"):
        pva.put(ioc.pv("LOOP1:RANGE"), "LOW", timeout=5)
    pyepics.put(ioc.pv("LOOP1:RANGE"), 1, wait=False)
    pyepics.wait_stderr("LOOP1:RANGE: lower SETPOINT below 350 K")
    assert sim.status("range")[1] == "0"
    pva.put(ioc.pv("LOOP1:SETPOINT"), 290.0, timeout=5)


def test_adapter_pulled_alarms_refuses_and_recovers(ioc: IocProcess, pva: Any, sim: PtySim,
                                                    pyepics: PyepicsClient) -> None:
    connected(pva, ioc)
    sim.kill()
    to_alarm = wait_for(lambda: severity(pva, ioc, "LOOP1:TEMPERATURE") == 3, 5, "COMM alarm")
    for name in ("LOOP1:TEMPERATURE", f"LOOP{LOOPS}:SETPOINT", "LOOP2:RANGE"):
        got = pyepics.get(ioc.pv(name))
        assert (got["severity"], got["status"]) == (3, 9), name  # INVALID, COMM
        assert "device not connected" in pva.get(ioc.pv(name), timeout=5)["alarm"]["message"]
    with pytest.raises(RemoteError, match="device not connected"):
        pva.put(ioc.pv("LOOP1:SETPOINT"), 300.0, timeout=5)
    assert pyepics.get(ioc.pv("CONNECTED"))["value"] == 0
    sim.start()  # a new pty behind the same path, fresh controller state
    to_clear = wait_for(lambda: severity(pva, ioc, "LOOP1:SETPOINT") == 0, 20, "alarm clears")
    wait_for(lambda: severity(pva, ioc, "LOOP1:TEMPERATURE") == 0, 5, "scan resumes")
    pyepics.put(ioc.pv("LOOP1:SETPOINT"), 295.0)
    assert sim.status("setp")[1] == "295"
    print(f"\n[adapter pulled] kill -> INVALID/COMM: {to_alarm * 1000:.0f} ms; "
          f"replugged -> alarm clear: {to_clear * 1000:.0f} ms")


def test_silent_controller_alarms_and_recovers(ioc: IocProcess, pva: Any, sim: PtySim) -> None:
    connected(pva, ioc)
    sim.control("STALL")
    try:
        wait_for(lambda: severity(pva, ioc, "LOOP1:TEMPERATURE") == 3, 10, "COMM alarm")
        with pytest.raises(RemoteError, match="device not connected"):
            pva.put(ioc.pv("LOOP1:SETPOINT"), 300.0, timeout=5)
    finally:
        sim.control("RESUME")
    wait_for(lambda: severity(pva, ioc, "LOOP1:TEMPERATURE") == 0, 20, "alarm clears")
