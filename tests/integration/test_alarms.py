"""Alarms computed from alarm limits: severity/status on CA, alarm.* on PVA.

EPICS semantics: ``value >= hihi`` is HIHI, ``value <= lolo`` LOLO, then HIGH
and LOW likewise; arrays take their worst element. On PVA the status is 1
(DEVICE) for limit alarms and the message names the condition (NO_ALARM when
there is none), as QSRV reports them.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import IocProcess, PyepicsClient, ca_pv

NO, MINOR, MAJOR = 0, 1, 2
STATUS = {"NO_ALARM": 0, "HIHI": 3, "HIGH": 4, "LOLO": 5, "LOW": 6}

#: (PV to put, value, PV to read, severity, condition).
CASES = [
    ("DRIVE", 10.0, "DRIVEN", MAJOR, "HIHI"),
    ("DRIVE", 9.99, "DRIVEN", MINOR, "HIGH"),
    ("DRIVE", 5.0, "DRIVEN", MINOR, "HIGH"),
    ("DRIVE", 4.99, "DRIVEN", NO, "NO_ALARM"),
    ("DRIVE", -4.99, "DRIVEN", NO, "NO_ALARM"),
    ("DRIVE", -5.0, "DRIVEN", MINOR, "LOW"),
    ("DRIVE", -10.0, "DRIVEN", MAJOR, "LOLO"),
    ("DRIVE", 50.0, "DRIVEN", MAJOR, "HIHI"),
    ("INT", 900, "INT", MAJOR, "HIHI"),
    ("INT", 500, "INT", MINOR, "HIGH"),
    ("INT", 499, "INT", NO, "NO_ALARM"),
    ("INT", -500, "INT", MINOR, "LOW"),
    ("INT", -901, "INT", MAJOR, "LOLO"),
    ("FLOAT", 90.0, "FLOAT", MAJOR, "HIHI"),
    ("FLOAT", -50.0, "FLOAT", MINOR, "LOW"),
    ("WF_I32", [1, 101], "WF_I32", MINOR, "HIGH"),
    ("WF_I32", [1000, 0, 150], "WF_I32", MAJOR, "HIHI"),
    ("WF_I32", [-5000, 99], "WF_I32", NO, "NO_ALARM"),
    ("WF_I32", [], "WF_I32", NO, "NO_ALARM"),
]


@pytest.mark.parametrize(("put_pv", "value", "read_pv", "severity", "condition"), CASES)
def test_limit_alarm_on_both_protocols(allkinds: IocProcess, ca: Any, pva: Any, pva_raw: Any,
                                       put_pv: str, value: Any, read_pv: str, severity: int,
                                       condition: str) -> None:
    pva.put(allkinds.pv(put_pv), value, timeout=10)
    got = pva_raw.get(allkinds.pv(read_pv), timeout=10)
    assert got["alarm.severity"] == severity
    assert got["alarm.status"] == (0 if severity == NO else 1)  # QSRV: limit alarms DEVICE
    assert got["alarm.message"] == ("NO_ALARM" if severity == NO else condition)
    meta = ca_pv(ca, allkinds.pv(read_pv)).read(data_type="time", timeout=10).metadata
    assert (int(meta.severity), int(meta.status)) == (severity, STATUS[condition])


def test_alarm_as_pyepics_sees_it(allkinds: IocProcess, pyepics: PyepicsClient) -> None:
    for value, severity, condition in ((7.0, MINOR, "HIGH"), (-11.0, MAJOR, "LOLO"),
                                       (0.0, NO, "NO_ALARM")):
        pyepics.put(allkinds.pv("DRIVE"), value, wait=True)
        got = pyepics.get(allkinds.pv("DRIVEN"))
        assert (got["value"], got["severity"], got["status"]) == (
            value, severity, STATUS[condition])


def test_alarm_change_is_posted_to_monitors(allkinds: IocProcess, pyepics: PyepicsClient,
                                            pva: Any) -> None:
    """A monitor gets the new severity together with the value that caused it."""
    pva.put(allkinds.pv("DRIVE"), 0.0, timeout=10)
    sub = pyepics.subscribe(allkinds.pv("DRIVEN"))
    pva.put(allkinds.pv("DRIVE"), 12.0, timeout=10)
    pva.put(allkinds.pv("DRIVE"), 1.0, timeout=10)
    updates = pyepics.updates(sub, 3)
    assert [(u["value"], u["severity"]) for u in updates[-2:]] == [(12.0, MAJOR), (1.0, NO)]
    pyepics.call("unsubscribe", id=sub)


def test_pvs_without_alarm_limits_never_alarm(allkinds: IocProcess, pva: Any,
                                              pva_raw: Any) -> None:
    for name, value in (("ROUNDED", 1e9), ("WF_F64", [1e3, -1e3])):
        pva.put(allkinds.pv(name), value, timeout=10)
        assert pva_raw.get(allkinds.pv(name), timeout=10)["alarm.severity"] == NO
