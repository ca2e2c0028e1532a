"""Every DBR type as EPICS base's own ``caget -d`` and ``pvget`` see it.

Compared with what softIocPVA answers for equivalent records (ao/ai,
stringout, longout, bo, mbbo, waveform): CTRL/GR_STRING in the STS_STRING
layout, floats as strings with the PV's precision (cvtDoubleToString), STSACK
with the value and the acknowledge state, PUT_ACKT/PUT_ACKS, the record type
as CLASS_NAME, control limits falling back to display limits, a read that
cannot be converted answered ECA_GETFAIL, and PVA valueAlarm/alarm as QSRV.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import caproto as ca
import pytest

from harness import IocProcess, caproto_client, poll_until
from harness.epicsbase import EpicsBase, epics_base

STRING_KINDS = ["FLOAT", "RO_FLOAT", "INT", "BOOL", "ENUM", "STRING", "RO_STRING"]
RECORD_TYPES = {"FLOAT": "ao", "RO_FLOAT": "ai", "INT": "longout", "TICKS": "longin",
                "BOOL": "bo", "ENUM": "mbbo", "STRING": "stringout", "RO_STRING": "stringin",
                "WF_F64": "waveform", "WF_U8": "waveform", "DISP_ONLY": "ai"}


@pytest.fixture(scope="module")
def base() -> EpicsBase:
    return epics_base()


def caget_fields(base: EpicsBase, ioc: IocProcess, dbr: str, pv: str) -> dict[str, str]:
    """``caget -d DBR pv`` as {label: text}; fails the test unless caget exits 0."""
    result = base.run("caget", "-d", dbr, ioc.pv(pv), target=ioc)
    assert result.returncode == 0, result.output
    fields = {}
    for line in result.stdout.splitlines()[1:]:
        label, sep, text = line.partition(":")
        if sep:
            fields[label.strip()] = text.strip()
    return fields


def caput(base: EpicsBase, ioc: IocProcess, pv: str, value: str) -> None:
    result = base.run("caput", ioc.pv(pv), value, target=ioc)
    assert result.returncode == 0, result.output


@pytest.mark.parametrize("pv", STRING_KINDS)
@pytest.mark.parametrize("dbr", ["DBR_GR_STRING", "DBR_CTRL_STRING", "DBR_STS_STRING"])
def test_string_requests_have_the_sts_layout(base: EpicsBase, allkinds: IocProcess, pv: str,
                                             dbr: str) -> None:
    plain = caget_fields(base, allkinds, "DBR_STRING", pv)["Value"]
    fields = caget_fields(base, allkinds, dbr, pv)
    assert fields["Value"] == plain  # no time stamp bytes before the text
    assert fields["Status"] == "NO_ALARM" and fields["Severity"] == "NO_ALARM"


@pytest.mark.parametrize(("pv", "text"), [("FLOAT", "1.500"), ("RO_FLOAT", "3.25"),
                                          ("DISP_ONLY", "1.00"), ("INT", "7"),
                                          ("ENUM", "ONE"), ("STRING", "hello")])
def test_value_as_string_honours_precision(base: EpicsBase, allkinds: IocProcess, pv: str,
                                           text: str) -> None:
    for dbr in ("DBR_STRING", "DBR_TIME_STRING", "DBR_STSACK_STRING"):
        assert caget_fields(base, allkinds, dbr, pv)["Value"] == text, dbr


def test_waveform_elements_as_strings(base: EpicsBase, allkinds: IocProcess) -> None:
    value = caget_fields(base, allkinds, "DBR_STRING", "WF_F64")["Value"]
    assert value.split()[:3] == ["1.00", "2.00", "3.00"]


@pytest.mark.parametrize(("pv", "rtyp"), sorted(RECORD_TYPES.items()))
def test_class_name_is_the_record_type(base: EpicsBase, allkinds: IocProcess, pv: str,
                                       rtyp: str) -> None:
    assert caget_fields(base, allkinds, "DBR_CLASS_NAME", pv)["Class Name"] == rtyp


def test_control_limits_fall_back_to_display_limits(base: EpicsBase,
                                                    allkinds: IocProcess) -> None:
    fields = caget_fields(base, allkinds, "DBR_CTRL_DOUBLE", "DISP_ONLY")
    assert (fields["Lo ctrl limit"], fields["Hi ctrl limit"]) == ("-5", "5")
    assert (fields["Lo disp limit"], fields["Hi disp limit"]) == ("-5", "5")
    assert fields["Lo alarm limit"] == "nan" and fields["Hi alarm limit"] == "nan"


def test_unconvertible_read_fails_like_rsrv(base: EpicsBase, allkinds: IocProcess) -> None:
    result = base.run("caget", "-d", "DBR_CTRL_DOUBLE", allkinds.pv("STRING"), target=allkinds)
    assert result.returncode >= 0, result.output  # libca did not abort
    assert "Channel read request failed" in result.output
    assert "Traceback" not in allkinds.log_text()


@pytest.fixture
def ca_client(allkinds: IocProcess) -> Iterator[Any]:
    with caproto_client(allkinds) as ctx:
        yield ctx


def test_stsack_follows_alarm_and_acknowledgement(base: EpicsBase, allkinds: IocProcess,
                                                  ca_client: Any) -> None:
    caput(base, allkinds, "FLOAT", "95")  # HIHI: MAJOR
    fields = caget_fields(base, allkinds, "DBR_STSACK_STRING", "FLOAT")
    assert (fields["Value"], fields["Severity"], fields["Ack severity"]) == (
        "95.000", "MAJOR", "MAJOR")
    assert fields["Ack transient?"] == "YES"
    caput(base, allkinds, "FLOAT", "0")  # alarm gone, not yet acknowledged
    fields = caget_fields(base, allkinds, "DBR_STSACK_STRING", "FLOAT")
    assert (fields["Severity"], fields["Ack severity"]) == ("NO_ALARM", "MAJOR")
    (chan,) = ca_client.get_pvs(allkinds.pv("FLOAT"))
    chan.wait_for_connection(timeout=10)
    chan.write([2], data_type=ca.ChannelType.PUT_ACKS, wait=True, timeout=10)
    poll_until(lambda: caget_fields(base, allkinds, "DBR_STSACK_STRING", "FLOAT")[
        "Ack severity"] == "NO_ALARM", timeout=10, message="ACKS acknowledged")
    chan.write([0], data_type=ca.ChannelType.PUT_ACKT, wait=True, timeout=10)
    caput(base, allkinds, "FLOAT", "60")  # HIGH: MINOR; without ACKT, ACKS follows
    caput(base, allkinds, "FLOAT", "0")
    fields = caget_fields(base, allkinds, "DBR_STSACK_STRING", "FLOAT")
    assert (fields["Ack transient?"], fields["Ack severity"]) == ("NO", "NO_ALARM")
    chan.write([1], data_type=ca.ChannelType.PUT_ACKT, wait=True, timeout=10)


def pvget(base: EpicsBase, ioc: IocProcess, pv: str) -> str:
    result = base.run("pvget", "-v", ioc.pv(pv), target=ioc)
    assert result.returncode == 0, result.output
    return result.stdout


def test_pva_value_alarm_unset_is_nan_and_inactive(base: EpicsBase,
                                                   allkinds: IocProcess) -> None:
    text = pvget(base, allkinds, "RO_FLOAT")
    assert re.search(r"boolean active false", text), text
    for limit in ("lowAlarmLimit", "lowWarningLimit", "highWarningLimit", "highAlarmLimit"):
        assert re.search(rf"double {limit} nan", text), text
    assert re.search(r"boolean active true", pvget(base, allkinds, "FLOAT"))


def test_pva_control_limits_fall_back_to_display_limits(base: EpicsBase,
                                                        allkinds: IocProcess) -> None:
    text = pvget(base, allkinds, "DISP_ONLY")
    control = text[text.index("structure control"):]
    assert "double limitLow -5" in control and "double limitHigh 5" in control, text


def test_pva_alarm_status_and_message_as_qsrv(base: EpicsBase, allkinds: IocProcess) -> None:
    caput(base, allkinds, "FLOAT", "60")
    try:
        text = pvget(base, allkinds, "FLOAT")
        assert "int status 1" in text and "string message HIGH" in text, text  # DEVICE
    finally:
        caput(base, allkinds, "FLOAT", "1.5")
    assert "string message NO_ALARM" in pvget(base, allkinds, "FLOAT")


def test_write_only_types_are_refused_cleanly(base: EpicsBase, allkinds: IocProcess,
                                              ca_client: Any) -> None:
    result = base.run("caget", "-w", "3", "-d", "DBR_PUT_ACKT", allkinds.pv("FLOAT"),
                      target=allkinds)
    assert result.returncode >= 0, result.output  # libca did not abort
    (chan,) = ca_client.get_pvs(allkinds.pv("FLOAT"))
    chan.wait_for_connection(timeout=10)
    sub = chan.subscribe(data_type=ca.ChannelType.PUT_ACKS)
    sub.add_callback(lambda *args: None)
    assert chan.read(timeout=10).data[0] == 1.5  # the circuit still answers
    sub.clear()
    assert "Traceback" not in allkinds.log_text(), allkinds.log_text()[-3000:]
