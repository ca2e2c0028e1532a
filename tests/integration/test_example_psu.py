"""The example power supply IOC (iocs/psu) beside its simulator (iocs/psu/sim.py).

Both run as processes on free ports; the test talks to the IOC with pyepics
(libca) and p4p, and to the simulator over its control port. The channel
count comes from the device; an interlock refuses puts with a message; a
dropped, refused or killed device puts the PVs in INVALID/COMM and refuses
puts, and they recover by themselves once it is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, PyepicsClient, pva_client
from harness.clients import time_until
from harness.ophyd_run import ophyd
from harness.sims import SimProcess

ROOT = Path(__file__).resolve().parents[2]
PSU_IOC = ROOT / "iocs" / "psu" / "ioc.py"
PSU_SIM = ROOT / "iocs" / "psu" / "sim.py"
CHANNELS = 6
SCAN_PERIOD = 0.5  # PowerSupply._poll
REQUEST_TIMEOUT = 0.5  # args.timeout of the IOC
PVA_STATUS_DRIVER = 2  # COMM maps to DRIVER, as QSRV does


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    with SimProcess(PSU_SIM, setpoint=1.5, log_dir=tmp_path_factory.mktemp("psu-sim"),
                    args=["--channels", str(CHANNELS)]) as process:
        yield process


@pytest.fixture(scope="module")
def ioc(module_ioc_factory: Any, sim: SimProcess,
        tmp_path_factory: pytest.TempPathFactory) -> IocProcess:
    config = tmp_path_factory.mktemp("psu") / "psu.yaml"
    config.write_text(f"ioc: {PSU_IOC}:PowerSupply\nprefix: 'PSU:'\n"
                      f"args:\n  port: {sim.port}\n  timeout: {REQUEST_TIMEOUT}\n")
    process: IocProcess = module_ioc_factory(config, name="psu")
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


def status(sim: SimProcess) -> dict[str, str]:
    """The simulator's STATUS? reply as a dict (``volt`` is ``1:0,2:12.5,...``)."""
    return dict(item.split("=", 1) for item in sim.control("STATUS?").split()[1:])


def sim_volts(sim: SimProcess, channel: int) -> float:
    return float(dict(v.split(":") for v in status(sim)["volt"].split(","))[str(channel)])


def severity(pva: Any, ioc: IocProcess, name: str) -> int:
    return int(pva.get(ioc.pv(name), timeout=5)["alarm"]["severity"])


def wait_clear(pva: Any, ioc: IocProcess) -> None:
    wait_for(lambda: severity(pva, ioc, "CH3:VOLTAGE_RBV") == 0
             and severity(pva, ioc, "INTERLOCK") == 0, 15, "device connected")


def test_channels_come_from_the_device(ioc: IocProcess, pva: Any,
                                       pyepics: PyepicsClient) -> None:
    wait_clear(pva, ioc)
    assert int(pva.get(ioc.pv("CHANNELS"), timeout=5)["value"]) == CHANNELS
    assert pyepics.get(ioc.pv(f"CH{CHANNELS}:VOLTAGE"))["value"] == 1.5  # read at start-up
    assert "PSU-SIM" in pva.get(ioc.pv("IDENTITY"), timeout=5)["value"]
    with pytest.raises(TimeoutError):
        pva.get(ioc.pv(f"CH{CHANNELS + 1}:VOLTAGE"), timeout=1)


def test_setpoint_reaches_the_device_and_readback_follows(ioc: IocProcess, pva: Any,
                                                          sim: SimProcess,
                                                          pyepics: PyepicsClient) -> None:
    wait_clear(pva, ioc)
    pyepics.put(ioc.pv("CH3:OUTPUT"), 1)
    pyepics.put(ioc.pv("CH3:VOLTAGE"), 12.5)  # libca, put-callback
    assert sim_volts(sim, 3) == 12.5
    assert "3:1" in status(sim)["outp"]
    wait_for(lambda: float(pva.get(ioc.pv("CH3:VOLTAGE_RBV"), timeout=5)["value"]) == 12.5,
             5, "VOLTAGE_RBV follows")
    pva.put(ioc.pv("CH3:VOLTAGE"), 7.25, timeout=5)  # p4p
    assert sim_volts(sim, 3) == 7.25
    wait_for(lambda: pyepics.get(ioc.pv("CH3:VOLTAGE_RBV"))["value"] == 7.25, 5,
             "VOLTAGE_RBV follows on CA")
    assert sim_volts(sim, 2) == 1.5  # the other channels untouched


def test_out_of_limits_put_is_refused(ioc: IocProcess, pva: Any, sim: SimProcess) -> None:
    wait_clear(pva, ioc)
    before = sim_volts(sim, 3)
    with pytest.raises(RemoteError):
        pva.put(ioc.pv("CH3:VOLTAGE"), 31.0, timeout=5)
    assert sim_volts(sim, 3) == before


def test_setting_the_device_refuses_is_reported_and_read_back(ioc: IocProcess, pva: Any,
                                                               sim: SimProcess,
                                                               pyepics: PyepicsClient) -> None:
    wait_clear(pva, ioc)
    pva.put(ioc.pv("CH4:VOLTAGE"), 5.0, timeout=5)
    sim.control("VMAX 20")  # the device's own limit is now below the IOC's
    try:
        with pytest.raises(RemoteError, match=r"refused by the device: -222,\"Data out of"):
            pva.put(ioc.pv("CH4:VOLTAGE"), 25.0, timeout=5)
        assert sim_volts(sim, 4) == 5.0
        assert float(pva.get(ioc.pv("CH4:VOLTAGE"), timeout=5)["value"]) == 5.0  # read back
        assert pyepics.get(ioc.pv("CH4:VOLTAGE"))["value"] == 5.0
    finally:
        sim.control("VMAX 30")


def test_interlock_refuses_puts_on_both_protocols(ioc: IocProcess, pva: Any,
                                                  sim: SimProcess,
                                                  pyepics: PyepicsClient) -> None:
    wait_clear(pva, ioc)
    before = sim_volts(sim, 3)
    sim.control("INTERLOCK 1")
    try:
        wait_for(lambda: pyepics.get(ioc.pv("INTERLOCK"))["value"] == 1, 5, "INTERLOCK read")
        with pytest.raises(RemoteError, match="CH3:VOLTAGE: interlock tripped"):
            pva.put(ioc.pv("CH3:VOLTAGE"), 20.0, timeout=5)
        pyepics.put(ioc.pv("CH3:VOLTAGE"), 21.0, wait=False)  # libca prints the message
        pyepics.wait_stderr("CH3:VOLTAGE: interlock tripped")
        with pytest.raises(RemoteError, match="CH2:OUTPUT: interlock tripped"):
            pva.put(ioc.pv("CH2:OUTPUT"), 1, timeout=5)
        assert sim_volts(sim, 3) == before
        assert float(pva.get(ioc.pv("CH3:VOLTAGE"), timeout=5)["value"]) == before
    finally:
        sim.control("INTERLOCK 0")
    wait_for(lambda: pyepics.get(ioc.pv("INTERLOCK"))["value"] == 0, 5, "INTERLOCK reset")
    pva.put(ioc.pv("CH3:VOLTAGE"), 3.0, timeout=5)
    assert sim_volts(sim, 3) == 3.0


def assert_down(ioc: IocProcess, pva: Any, pyepics: PyepicsClient) -> None:
    """INVALID/COMM on CA and PVA, the reason on PVA, puts refused on both."""
    for name in ("CH1:VOLTAGE", "CH3:VOLTAGE_RBV", f"CH{CHANNELS}:OUTPUT", "INTERLOCK"):
        alarm = pva.get(ioc.pv(name), timeout=5)["alarm"]
        assert (alarm["severity"], alarm["status"]) == (3, PVA_STATUS_DRIVER)
        assert "device not connected" in alarm["message"]
        got = pyepics.get(ioc.pv(name))
        assert (got["severity"], got["status"]) == (3, 9)  # INVALID, COMM
    assert pyepics.get(ioc.pv("CONNECTED"))["value"] == 0
    with pytest.raises(RemoteError, match="device not connected"):
        pva.put(ioc.pv("CH3:VOLTAGE"), 9.0, timeout=5)
    pyepics.put(ioc.pv("CH3:VOLTAGE"), 9.5, wait=False)
    pyepics.wait_stderr(f"{ioc.pv('CH3:VOLTAGE')}: device not connected")


@pytest.mark.parametrize("fault", ["DROP", "DOWN", "KILL", "STALL"])
def test_device_fault_alarms_refuses_and_recovers(fault: str, ioc: IocProcess, pva: Any,
                                                  sim: SimProcess,
                                                  pyepics: PyepicsClient) -> None:
    wait_clear(pva, ioc)
    if fault == "KILL":
        sim.kill()
    else:
        sim.control(fault if fault == "DOWN" else "STALL")  # DROP: stall, then hang up
        if fault == "DROP":
            sim.control("DROP")
    to_alarm = wait_for(lambda: severity(pva, ioc, "CH3:VOLTAGE_RBV") == 3, 10, "COMM alarm")
    if fault == "STALL":  # connected but silent: two request timeouts (0.5 s) in a row
        assert to_alarm < SCAN_PERIOD + 2 * REQUEST_TIMEOUT + 2.0
    else:  # a closed or refused connection: at once, within one scan period (plus margin)
        assert to_alarm < SCAN_PERIOD + 1.0
    assert_down(ioc, pva, pyepics)
    if fault == "KILL":
        sim.start()  # same port, fresh device: every channel at 1.5 V, output off
    else:
        sim.control("PANEL 3 4.75")  # changed on the front panel meanwhile
        sim.control("RESUME")
        sim.control("UP")
    to_clear = wait_for(lambda: severity(pva, ioc, "CH3:VOLTAGE") == 0, 15, "alarm clears")
    expected = 1.5 if fault == "KILL" else 4.75
    assert float(pva.get(ioc.pv("CH3:VOLTAGE"), timeout=5)["value"]) == expected  # re-read
    got = pyepics.get(ioc.pv("CH3:VOLTAGE"))
    assert (got["value"], got["severity"], got["status"]) == (expected, 0, 0)
    assert pyepics.get(ioc.pv("CONNECTED"))["value"] == 1
    pva.put(ioc.pv("CH3:VOLTAGE"), 2.0, timeout=5)  # puts pass again
    assert sim_volts(sim, 3) == 2.0
    print(f"\n[{fault}] fault -> INVALID/COMM: {to_alarm * 1000:.0f} ms; "
          f"device back -> alarm clear: {to_clear * 1000:.0f} ms")


def test_ophyd_async_drives_the_power_supply_from_pvi_alone(ioc: IocProcess,
                                                           sim: SimProcess) -> None:
    """The channels the device reported at start-up are a vector in the IOC's PVI."""
    report = ophyd(ioc, "ch.4.voltage=7.25")
    signals = report["signals"]
    for n in range(1, CHANNELS + 1):
        assert signals[f"ch.{n}.voltage"]["type"] == "SignalRW"
        assert signals[f"ch.{n}.voltage_rbv"]["source"] == f"pva://{ioc.prefix}CH{n}:VOLTAGE_RBV"
    assert report["sets"]["ch.4.voltage"]["value"] == 7.25
    wait_for(lambda: sim_volts(sim, 4) == 7.25, 10.0, "the device set to 7.25 V on CH4")
