"""A device IOC beside its simulator process, with the device dropped, stalled and restarted.

The IOC (iocs/tcp_device.py) talks to sims/simdevice.py over TCP; the test
talks to the IOC with pyepics (libca), caproto and p4p. While the device is
gone, READING and SETPOINT must be INVALID/COMM on both protocols (PVA with
a message), puts to SETPOINT refused with "device not connected", CONNECTED
0; once it is back the alarms clear and the values are re-read from the
device. The times from fault to alarm and from recovery to clear are
printed (run with ``-s`` to see them); only generous deadlines are asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, MonitorQueue, PyepicsClient, ca_pv, caproto_client, pva_client
from harness.clients import time_until
from harness.sims import SimProcess

TCP_DEVICE = Path(__file__).resolve().parent / "iocs" / "tcp_device.py"
SCAN_PERIOD = 0.2
PVA_STATUS_DRIVER = 2  # COMM maps to DRIVER, as QSRV does


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    with SimProcess(setpoint=3.0, log_dir=tmp_path_factory.mktemp("sim")) as process:
        yield process


@pytest.fixture(scope="module")
def ioc(module_ioc_factory: Any, sim: SimProcess,
        tmp_path_factory: pytest.TempPathFactory) -> IocProcess:
    config = tmp_path_factory.mktemp("device") / "device.yaml"
    config.write_text(f"ioc: {TCP_DEVICE}:TcpDevice\nprefix: 'DEV:'\n"
                      f"args:\n  port: {sim.port}\n  timeout: 0.5\n")
    process: IocProcess = module_ioc_factory(config, name="tcp-device")
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
    """Poll ``condition()`` every 10 ms; seconds until it held."""
    return time_until(condition, timeout, what, interval=0.01)


def pva_alarmed(pva: Any, ioc: IocProcess, name: str) -> bool:
    alarm = pva.get(ioc.pv(name), timeout=5)["alarm"]
    return bool(alarm["severity"] == 3 and alarm["status"] == PVA_STATUS_DRIVER)


def pva_clear(pva: Any, ioc: IocProcess, name: str) -> bool:
    return bool(pva.get(ioc.pv(name), timeout=5)["alarm"]["severity"] == 0)


def assert_down_everywhere(ioc: IocProcess, pva: Any, pyepics: PyepicsClient) -> None:
    """INVALID/COMM on CA and PVA, message on PVA, puts refused on every client."""
    for name in ("READING", "SETPOINT"):
        value = pva.get(ioc.pv(name), timeout=5)
        assert value["alarm"]["severity"] == 3
        assert "device not connected" in value["alarm"]["message"]
        got = pyepics.get(ioc.pv(name))
        assert (got["severity"], got["status"]) == (3, 9)  # INVALID, COMM
    assert int(pva.get(ioc.pv("CONNECTED"), timeout=5)["value"]["index"]) == 0
    assert pyepics.get(ioc.pv("CONNECTED"))["value"] == 0
    before = float(pva.get(ioc.pv("SETPOINT"), timeout=5)["value"])
    with pytest.raises(RemoteError, match="device not connected"):
        pva.put(ioc.pv("SETPOINT"), 42.0, timeout=5)
    pyepics.put(ioc.pv("SETPOINT"), 43.0, wait=False)  # libca prints the server's message
    pyepics.wait_stderr(f"{ioc.pv('SETPOINT')}: device not connected")
    with caproto_client(ioc) as ca:
        response = ca_pv(ca, ioc.pv("SETPOINT")).write([44.0], wait=True, timeout=10)
        assert response.status.name == "ECA_PUTFAIL"
    assert float(pva.get(ioc.pv("SETPOINT"), timeout=5)["value"]) == before


def test_connected_device_serves_values_and_takes_puts(ioc: IocProcess, pva: Any,
                                                      sim: SimProcess,
                                                      pyepics: PyepicsClient) -> None:
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "connected")
    assert pyepics.get(ioc.pv("CONNECTED"))["value"] == 1
    assert float(pva.get(ioc.pv("SETPOINT"), timeout=5)["value"]) == 3.0  # read at connect
    pva.put(ioc.pv("SETPOINT"), 5.5, timeout=5)
    wait_for(lambda: "setpoint=5.5" in sim.control("STATUS?"), 5, "setpoint written")
    wait_for(lambda: 5.5 < float(pva.get(ioc.pv("READING"), timeout=5)["value"]) < 6.5, 5,
             "reading follows")


def test_device_down_alarms_refuses_and_recovers(ioc: IocProcess, pva: Any, sim: SimProcess,
                                                 pyepics: PyepicsClient) -> None:
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "connected")
    refreshes = int(pva.get(ioc.pv("REFRESHES"), timeout=5)["value"])
    sim.control("DOWN")  # connections closed, port refused
    to_alarm = wait_for(lambda: pva_alarmed(pva, ioc, "READING"), 5, "COMM alarm")
    assert_down_everywhere(ioc, pva, pyepics)
    sim.control("PANEL 7.25")  # changed on the front panel while the IOC could not see it
    sim.control("UP")
    to_clear = wait_for(lambda: pva_clear(pva, ioc, "SETPOINT"), 15, "alarm clears")
    assert float(pva.get(ioc.pv("SETPOINT"), timeout=5)["value"]) == 7.25  # re-read
    assert int(pva.get(ioc.pv("REFRESHES"), timeout=5)["value"]) == refreshes + 1
    got = pyepics.get(ioc.pv("SETPOINT"))
    assert (got["value"], got["severity"], got["status"]) == (7.25, 0, 0)
    pva.put(ioc.pv("SETPOINT"), 2.0, timeout=5)  # puts pass again
    print(f"\n[device down] fault -> INVALID/COMM: {to_alarm * 1000:.0f} ms "
          f"(scan period {SCAN_PERIOD * 1000:.0f} ms); device back -> alarm clear: "
          f"{to_clear * 1000:.0f} ms")
    assert to_alarm < 2.0  # a closed connection is seen at once; generous deadline


def test_connection_dropped_mid_reply_recovers_by_itself(ioc: IocProcess, pva: Any,
                                                         sim: SimProcess) -> None:
    """The device sends half a reply and hangs up; nobody restarts anything."""
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "connected")
    updates = MonitorQueue()
    sub = pva.monitor(ioc.pv("READING"), updates, notify_disconnect=False)
    try:
        updates.wait_count(1)
        start = time.monotonic()
        sim.control("HALF")  # the next reply (a scan's MEAS?) is cut, then the link drops
        alarmed = updates.wait_for(lambda v: v["alarm"]["severity"] == 3, timeout=10)
        to_alarm = time.monotonic() - start
        assert "device not connected: closed by the device" in alarmed["alarm"]["message"]
        after = next(i for i, v in enumerate(updates.items) if v is alarmed) + 1
        wait_for(lambda: any(v["alarm"]["severity"] == 0 for v in updates.items[after:]), 15,
                 "alarm clears")
        to_clear = time.monotonic() - start
    finally:
        sub.close()
    print(f"\n[dropped mid-reply] HALF -> INVALID/COMM: {to_alarm * 1000:.0f} ms (next scan); "
          f"-> cleared by the automatic reconnect: {to_clear * 1000:.0f} ms")


def test_stalled_device_alarms_after_timeouts_and_recovers(ioc: IocProcess, pva: Any,
                                                           sim: SimProcess,
                                                           pyepics: PyepicsClient) -> None:
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "connected")
    sim.control("STALL")  # connected, but no replies
    to_alarm = wait_for(lambda: pva_alarmed(pva, ioc, "READING"), 10, "COMM alarm")
    assert_down_everywhere(ioc, pva, pyepics)
    sim.control("RESUME")
    to_clear = wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "alarm clears")
    print(f"\n[device stalled] fault -> INVALID/COMM: {to_alarm * 1000:.0f} ms (2 request "
          f"timeouts of 500 ms); device answers -> alarm clear: {to_clear * 1000:.0f} ms")


def test_device_process_restarted(ioc: IocProcess, pva: Any, sim: SimProcess,
                                  pyepics: PyepicsClient) -> None:
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "connected")
    sim.kill()
    to_alarm = wait_for(lambda: pva_alarmed(pva, ioc, "SETPOINT"), 5, "COMM alarm")
    sim.start()  # same port, fresh state (setpoint 3)
    to_clear = wait_for(lambda: pva_clear(pva, ioc, "SETPOINT"), 15, "alarm clears")
    assert float(pva.get(ioc.pv("SETPOINT"), timeout=5)["value"]) == 3.0
    assert pyepics.get(ioc.pv("CONNECTED"))["value"] == 1
    print(f"\n[device restarted] kill -> INVALID/COMM: {to_alarm * 1000:.0f} ms; "
          f"restart -> alarm clear: {to_clear * 1000:.0f} ms")


def test_idle_cpu_with_the_device_gone(ioc: IocProcess, pva: Any, sim: SimProcess) -> None:
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "connected")
    sim.control("DOWN")
    try:
        wait_for(lambda: pva_alarmed(pva, ioc, "READING"), 5, "COMM alarm")
        process = psutil.Process(ioc.pid)
        before, start = process.cpu_times(), time.monotonic()
        time.sleep(5.0)  # the measurement window, not a synchronisation
        after, elapsed = process.cpu_times(), time.monotonic() - start
        used = (after.user - before.user + after.system - before.system) / elapsed * 100
        print(f"\n[device gone] IOC CPU over {elapsed:.1f} s: {used:.2f} % of one core")
        assert used < 10.0, f"IOC uses {used:.1f} % CPU with its device gone: a busy loop?"
        assert pva_alarmed(pva, ioc, "READING")
    finally:
        sim.control("UP")
    wait_for(lambda: pva_clear(pva, ioc, "READING"), 15, "alarm clears")
    log = ioc.log_text()
    assert "Traceback" not in log
    assert log.count("scan _poll: sim") <= 8  # one line per outage, not one per period
