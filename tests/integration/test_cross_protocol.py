"""One change, one truth: CA and PVA report the same value, alarm and timestamp (to the ns).

CA timestamps count from the EPICS epoch (1990); PVA's from 1970: they differ
by exactly 631152000 s. DRIVE's on_put hook sets DRIVEN, whose alarm limits
are lolo -10, low -5, high 5, hihi 10.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from harness import IocProcess, MonitorQueue, PyepicsClient, ca_pv

EPICS_EPOCH = 631152000

# CA status codes and PVA alarm status codes (PVA, as QSRV: 0 none, 1 device, 2 driver).
NO_ALARM, HIHI, HIGH, LOLO, LOW, COMM = 0, 3, 4, 5, 6, 9


class Seen(NamedTuple):
    """A value, its alarm and its timestamp in ns since 1970, from any client."""

    value: float
    severity: int
    status: int  # CA status code (PVA: the message names it)
    stamp_ns: int


def from_pva(value: Any) -> Seen:
    names = {"NO_ALARM": NO_ALARM, "HIHI": HIHI, "HIGH": HIGH, "LOLO": LOLO, "LOW": LOW}
    message = value["alarm.message"]
    return Seen(float(value["value"]), int(value["alarm.severity"]),
                names.get(message, -1),
                value["timeStamp.secondsPastEpoch"] * 10**9 + value["timeStamp.nanoseconds"])


def from_caproto(response: Any) -> Seen:
    meta = response.metadata
    stamp = (meta.stamp.secondsSinceEpoch + EPICS_EPOCH) * 10**9 + meta.stamp.nanoSeconds
    return Seen(float(response.data[0]), int(meta.severity), int(meta.status), stamp)


def from_pyepics(item: dict[str, Any]) -> Seen:
    return Seen(float(item["value"]), item["severity"], item["status"],
                int(item["posixseconds"]) * 10**9 + item["nanoseconds"])


CASES = [(7.0, 1, HIGH), (-12.0, 2, LOLO), (11.0, 2, HIHI), (-6.0, 1, LOW), (0.5, 0, NO_ALARM)]


@pytest.mark.parametrize(("value", "severity", "status"), CASES)
@pytest.mark.parametrize("client", ["pyepics", "caproto"])
def test_ca_put_seen_by_pva_monitor(allkinds: IocProcess, pyepics: PyepicsClient, ca: Any,
                                    pva_raw: Any, client: str, value: float, severity: int,
                                    status: int) -> None:
    queue = MonitorQueue()
    sub = pva_raw.monitor(allkinds.pv("DRIVEN"), queue, notify_disconnect=False)
    try:
        queue.wait_count(1)
        if client == "pyepics":
            pyepics.put(allkinds.pv("DRIVE"), value, wait=True)
        else:
            chan = ca_pv(ca, allkinds.pv("DRIVE"))
            assert chan.write([value], wait=True, timeout=10).status.name == "ECA_NORMAL"
        pva_seen = from_pva(queue.wait_for(lambda v: v["value"] == value))
    finally:
        sub.close()
    assert pva_seen[:3] == (value, severity, status)
    ca_seen = from_caproto(ca_pv(ca, allkinds.pv("DRIVEN")).read(data_type="time", timeout=10))
    assert ca_seen == pva_seen
    got = pyepics.get(allkinds.pv("DRIVEN"))
    assert from_pyepics(got) == pva_seen


@pytest.mark.parametrize(("value", "severity", "status"), CASES)
def test_pva_put_seen_by_ca_monitors(allkinds: IocProcess, pyepics: PyepicsClient, ca: Any,
                                     pva_raw: Any, value: float, severity: int,
                                     status: int) -> None:
    value = value + 0.25  # differs from the CA test's values
    sub_id = pyepics.subscribe(allkinds.pv("DRIVEN"))
    queue = MonitorQueue()
    sub = ca_pv(ca, allkinds.pv("DRIVEN")).subscribe(data_type="time")
    sub.add_callback(queue)
    try:
        queue.wait_count(1)
        pva_raw.put(allkinds.pv("DRIVE"), value, timeout=10)
        caproto_seen = from_caproto(queue.wait_for(lambda r: r.data[0] == value))
        updates = pyepics.updates(sub_id, 2, timeout=10)
        pyepics_seen = from_pyepics(
            next(u for u in reversed(updates) if u["value"] == value))
    finally:
        sub.clear()
        pyepics.call("unsubscribe", id=sub_id)
    pva_seen = from_pva(pva_raw.get(allkinds.pv("DRIVEN"), timeout=10))
    assert pva_seen[:3] == (value, severity, status)
    assert caproto_seen == pva_seen
    assert pyepics_seen == pva_seen


def test_same_pv_put_and_monitored_across_protocols(allkinds: IocProcess, ca: Any,
                                                    pva_raw: Any) -> None:
    """A put to FLOAT over CA and a PVA monitor of FLOAT: alarm from FLOAT's own limits."""
    queue = MonitorQueue()
    sub = pva_raw.monitor(allkinds.pv("FLOAT"), queue, notify_disconnect=False)
    try:
        queue.wait_count(1)
        chan = ca_pv(ca, allkinds.pv("FLOAT"))
        chan.write([60.0], wait=True, timeout=10)
        seen = from_pva(queue.wait_for(lambda v: v["value"] == 60.0))
        assert seen[:3] == (60.0, 1, HIGH)
        assert from_caproto(chan.read(data_type="time", timeout=10)) == seen
        chan.write([-95.0], wait=True, timeout=10)
        assert from_pva(queue.wait_for(lambda v: v["value"] == -95.0))[:3] == (-95.0, 2, LOLO)
        chan.write([1.5], wait=True, timeout=10)
        assert from_pva(queue.wait_for(lambda v: v["value"] == 1.5))[:3] == (1.5, 0, NO_ALARM)
    finally:
        sub.close()


def test_alarm_set_by_ioc_code_on_both_protocols(allkinds: IocProcess, pyepics: PyepicsClient,
                                                 ca: Any, pva_raw: Any) -> None:
    """FAULT's on_put hook raises INVALID/COMM on DRIVEN with a message, then clears it."""
    pyepics.put(allkinds.pv("DRIVE"), 0.0, wait=True)
    pyepics.put(allkinds.pv("FAULT"), 1, wait=True)
    value = pva_raw.get(allkinds.pv("DRIVEN"), timeout=10)
    assert (value["alarm.severity"], value["alarm.status"], value["alarm.message"]) == (
        3, 2, "device lost")  # COMM -> PVA status 2 = DRIVER, as QSRV maps it
    ca_seen = from_caproto(ca_pv(ca, allkinds.pv("DRIVEN")).read(data_type="time", timeout=10))
    assert (ca_seen.severity, ca_seen.status) == (3, COMM)
    got = pyepics.get(allkinds.pv("DRIVEN"))
    assert (got["severity"], got["status"]) == (3, COMM)
    pva_raw.put(allkinds.pv("FAULT"), {"value.index": 0}, timeout=10)
    value = pva_raw.get(allkinds.pv("DRIVEN"), timeout=10)
    assert (value["alarm.severity"], value["alarm.status"], value["alarm.message"]) == (
        0, 0, "NO_ALARM")
    assert pyepics.get(allkinds.pv("DRIVEN"))["severity"] == 0
