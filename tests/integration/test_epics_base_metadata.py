"""Metadata fields written at run time (``P:X.EGU``, ``.HIHI``, ``.DESC``...), as
operators do on EPICS IOCs: with EPICS base's caput/caget, p4p, and a CA
DBE_PROPERTY subscriber. A change shows on both protocols; a changed alarm
limit changes the alarm; a bad value is refused and changes nothing."""

from __future__ import annotations

import queue
import re
from collections.abc import Iterator
from typing import Any

import pytest
from caproto import ChannelType, SubscriptionType
from p4p.client.thread import RemoteError

from harness import IocProcess, ca_pv, poll_until, pva_client
from harness.epicsbase import epics_base


@pytest.fixture(scope="module")
def pva(allkinds: IocProcess) -> Iterator[Any]:
    with pva_client(allkinds, nt=False) as ctx:
        yield ctx


def caput(ioc: IocProcess, name: str, value: str) -> Any:
    return epics_base().run("caput", "-c", "-w", "5", ioc.pv(name), value, target=ioc)


def caget(ioc: IocProcess, *args: str) -> str:
    result = epics_base().run("caget", *args[:-1], ioc.pv(args[-1]), target=ioc)
    assert result.returncode == 0, result.output
    return result.stdout


def test_egu_and_display_limits_reach_both_protocols(allkinds: IocProcess, pva: Any) -> None:
    assert caput(allkinds, "INT.EGU", "um").returncode == 0
    assert caput(allkinds, "INT.HOPR", "5000").returncode == 0
    ctrl = caget(allkinds, "-d", "DBR_CTRL_LONG", "INT")
    assert re.search(r"Units:\s+um\n", ctrl) and re.search(r"Hi disp limit:\s+5000\n", ctrl), ctrl
    assert caget(allkinds, "-t", "INT.EGU").strip() == "um"
    value = pva.get(allkinds.pv("INT"), timeout=10)
    assert value["display.units"] == "um" and value["display.limitHigh"] == 5000


def test_a_written_alarm_limit_changes_the_alarm(allkinds: IocProcess, pva: Any) -> None:
    assert caput(allkinds, "DISP_ONLY.HIHI", "0.5").returncode == 0  # value 1.0
    assert caget(allkinds, "-t", "DISP_ONLY.SEVR").strip() == "MAJOR"
    value = pva.get(allkinds.pv("DISP_ONLY"), timeout=10)
    assert value["alarm.severity"] == 2 and value["valueAlarm.highAlarmLimit"] == 0.5
    assert caput(allkinds, "DISP_ONLY.HHSV", "MINOR").returncode == 0
    assert caget(allkinds, "-t", "DISP_ONLY.SEVR").strip() == "MINOR"
    assert caput(allkinds, "DISP_ONLY.HIHI", "nan").returncode == 0  # disabled again
    assert caget(allkinds, "-t", "DISP_ONLY.SEVR").strip() == "NO_ALARM"


def test_desc_over_pva_is_seen_over_ca(allkinds: IocProcess, pva: Any) -> None:
    pva.put(allkinds.pv("RO_STRING.DESC"), "Relabelled by an operator", timeout=10)
    assert caget(allkinds, "-t", "RO_STRING.DESC").strip() == "Relabelled by an operator"
    assert pva.get(allkinds.pv("RO_STRING"), timeout=10)["display.description"] == (
        "Relabelled by an operator")


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("FLOAT.HIGH", "95", "alarm limit high=95.0 is above hihi=90.0"),
    ("FLOAT.LOPR", "500", "leaves the display range empty"),
])
def test_bad_metadata_is_refused_and_changes_nothing(allkinds: IocProcess, pva: Any,
                                                     field: str, value: str,
                                                     reason: str) -> None:
    before = caget(allkinds, "-t", field)
    result = caput(allkinds, field, value)
    assert "put operation" in result.output or result.returncode != 0, result.output
    allkinds.wait_for_log(f"put refused .*{field}: .*{reason}")
    with pytest.raises(RemoteError, match=reason):
        pva.put(allkinds.pv(field), value, timeout=10)
    assert caget(allkinds, "-t", field) == before


def test_a_desc_longer_than_a_record_holds_is_refused(allkinds: IocProcess, pva: Any) -> None:
    with pytest.raises(RemoteError, match="at most 40 bytes, got 41"):
        pva.put(allkinds.pv("FLOAT.DESC"), "d" * 41, timeout=10)
    assert caget(allkinds, "-t", "FLOAT.DESC").strip() == "A float"


def test_other_fields_stay_read_only(allkinds: IocProcess) -> None:
    for field in ("FLOAT.DRVH", "FLOAT.RTYP", "FLOAT.PREC", "FLOAT.SEVR"):
        before = caget(allkinds, "-t", field)
        caput(allkinds, field, "1")
        assert caget(allkinds, "-t", field) == before, field


def test_property_subscribers_get_metadata_changes_only(allkinds: IocProcess,
                                                         ca: Any) -> None:
    chan = ca_pv(ca, allkinds.pv("FLOAT"))
    seen: queue.Queue[Any] = queue.Queue()
    sub = chan.subscribe(data_type=ChannelType.CTRL_DOUBLE,
                         mask=SubscriptionType.DBE_PROPERTY)

    def got(_sub: Any, response: Any) -> None:  # held here: caproto keeps callbacks weakly
        seen.put(response)

    sub.add_callback(got)
    try:
        first = seen.get(timeout=10)
        assert first.metadata.units == b"mm"
        ca_pv(ca, allkinds.pv("FLOAT")).write([2.5], wait=True, timeout=10)  # a value change
        assert caput(allkinds, "FLOAT.EGU", "cm").returncode == 0
        update = seen.get(timeout=10)
        assert update.metadata.units == b"cm"  # the value change sent nothing
        assert seen.empty()
    finally:
        sub.clear()
        caput(allkinds, "FLOAT.EGU", "mm")
        ca_pv(ca, allkinds.pv("FLOAT")).write([1.5], wait=True, timeout=10)
    poll_until(lambda: caget(allkinds, "-t", "FLOAT.EGU").strip() == "mm", timeout=10,
               message="EGU back to mm")


def test_a_written_hysteresis_holds_the_alarm(allkinds: IocProcess, pva: Any) -> None:
    """.HYST as in an ai record: an alarm holds while the value stays within HYST of
    the limit that raised it (FLOAT: HIGH 50, HIHI 90)."""
    try:
        assert caput(allkinds, "FLOAT.HYST", "10").returncode == 0
        assert caget(allkinds, "-t", "FLOAT.HYST").strip() == "10"
        assert pva.get(allkinds.pv("FLOAT"), timeout=10)["valueAlarm.hysteresis"] == 10.0
        seen = []
        for value in ("95", "85", "80", "79", "45", "39"):
            assert caput(allkinds, "FLOAT", value).returncode == 0
            seen.append(caget(allkinds, "-t", "FLOAT.STAT").strip())
        assert seen == ["HIHI", "HIHI", "HIHI", "HIGH", "HIGH", "NO_ALARM"]
        assert caput(allkinds, "FLOAT.HYST", "-1").returncode != 0  # refused
        assert caget(allkinds, "-t", "FLOAT.HYST").strip() == "10"
    finally:
        caput(allkinds, "FLOAT.HYST", "0")
        caput(allkinds, "FLOAT", "1.5")
