"""Units, precision, display/control/alarm limits and enum states as each client sees them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from harness import IocProcess, PyepicsClient, ca_pv

NAN = math.nan

#: name -> (units, precision, display limits, control limits, alarm (lolo, low, high, hihi)).
#: A disabled alarm limit is NaN for float PVs and 0 for integer PVs (CA has no integer NaN).
NUMERIC: dict[str, tuple[str, int | None, tuple[float, float], tuple[float, float],
                         tuple[float, float, float, float] | None]] = {
    "FLOAT": ("mm", 3, (-200, 200), (-100, 100), (-90, -50, 50, 90)),
    "INT": ("cnt", None, (-2000, 2000), (-1000, 1000), (-900, -500, 500, 900)),
    "RO_FLOAT": ("V", 2, (0, 0), (0, 0), None),
    "DRIVEN": ("A", 2, (0, 0), (0, 0), (-10, -5, 5, 10)),
    "DRIVE": ("", 3, (-50, 50), (-50, 50), None),
    "WF_F64": ("V", 2, (-1000, 1000), (-1000, 1000), None),
    "WF_I32": ("cnt", None, (0, 0), (0, 0), (0, 0, 100, 1000)),
}
ENUMS = {"ENUM": ["ZERO", "ONE", "TWO", "THREE"], "BOOL": ["Off", "On"], "FAULT": ["OK", "FAULT"]}


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN (or pyepics's 'nan' string) as equal to NaN."""
    def num(x: Any) -> Any:
        return NAN if x == "nan" else x
    a, b = num(a), num(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def alarm_or_disabled(name: str) -> tuple[float, float, float, float]:
    alarm = NUMERIC[name][4]
    if alarm is not None:
        return alarm
    return (NAN, NAN, NAN, NAN)


@pytest.mark.parametrize("name", list(NUMERIC))
def test_numeric_metadata_pyepics(allkinds: IocProcess, pyepics: PyepicsClient,
                                  name: str) -> None:
    units, precision, disp, ctrl, _ = NUMERIC[name]
    meta = pyepics.get(allkinds.pv(name), ctrl=True)["ctrl"]
    assert meta["units"] == units
    if precision is not None:
        assert meta["precision"] == precision
    else:
        assert "precision" not in meta  # DBR_CTRL_LONG has no precision
    assert (meta["lower_disp_limit"], meta["upper_disp_limit"]) == disp
    assert (meta["lower_ctrl_limit"], meta["upper_ctrl_limit"]) == ctrl
    got = (meta["lower_alarm_limit"], meta["lower_warning_limit"],
           meta["upper_warning_limit"], meta["upper_alarm_limit"])
    assert all(same(g, e) for g, e in zip(got, alarm_or_disabled(name), strict=True)), got


@pytest.mark.parametrize("name", list(NUMERIC))
def test_numeric_metadata_caproto(allkinds: IocProcess, ca: Any, name: str) -> None:
    units, precision, disp, ctrl, _ = NUMERIC[name]
    meta = ca_pv(ca, allkinds.pv(name)).read(data_type="control", timeout=10).metadata
    assert meta.units == units.encode()
    if precision is not None:
        assert meta.precision == precision
    assert (meta.lower_disp_limit, meta.upper_disp_limit) == disp
    assert (meta.lower_ctrl_limit, meta.upper_ctrl_limit) == ctrl
    got = (meta.lower_alarm_limit, meta.lower_warning_limit, meta.upper_warning_limit,
           meta.upper_alarm_limit)
    assert all(same(float(g), e) for g, e in zip(got, alarm_or_disabled(name), strict=True)), got


@pytest.mark.parametrize("name", list(NUMERIC))
def test_numeric_metadata_p4p(allkinds: IocProcess, pva_raw: Any, name: str) -> None:
    units, precision, disp, ctrl, alarm = NUMERIC[name]
    value = pva_raw.get(allkinds.pv(name), timeout=10)
    assert value["display.units"] == units
    # integer PVs have no precision on CA; PVA shows 0 for them
    assert value["display.precision"] == (precision if precision is not None else 0)
    assert (value["display.limitLow"], value["display.limitHigh"]) == disp
    assert (value["control.limitLow"], value["control.limitHigh"]) == ctrl
    assert value["valueAlarm.active"] is (alarm is not None)
    if alarm is not None:
        got = (value["valueAlarm.lowAlarmLimit"], value["valueAlarm.lowWarningLimit"],
               value["valueAlarm.highWarningLimit"], value["valueAlarm.highAlarmLimit"])
        expected = alarm if name != "WF_I32" else (0, 0, 100, 1000)
        assert all(same(float(g), float(e)) for g, e in zip(got, expected, strict=True)), got
        assert (value["valueAlarm.lowAlarmSeverity"], value["valueAlarm.lowWarningSeverity"],
                value["valueAlarm.highWarningSeverity"],
                value["valueAlarm.highAlarmSeverity"]) == (2, 1, 1, 2)


def test_description_on_pva(allkinds: IocProcess, pva_raw: Any) -> None:
    for name, text in (("FLOAT", "A float"), ("ENUM", "An enum"), ("STRING", "A string"),
                       ("DRIVEN", "Follows DRIVE")):
        assert pva_raw.get(allkinds.pv(name), timeout=10)["display.description"] == text


@pytest.mark.parametrize("name", list(ENUMS))
def test_enum_states_on_every_client(allkinds: IocProcess, pyepics: PyepicsClient, ca: Any,
                                     pva_raw: Any, name: str) -> None:
    states = ENUMS[name]
    full = allkinds.pv(name)
    assert pyepics.get(full, ctrl=True)["ctrl"]["enum_strs"] == states
    meta = ca_pv(ca, full).read(data_type="control", timeout=10).metadata
    assert [s.decode() for s in meta.enum_strings] == states
    assert list(pva_raw.get(full, timeout=10)["value.choices"]) == states


def test_string_pvs_have_no_numeric_metadata_on_pva(allkinds: IocProcess,
                                                    pva_raw: Any) -> None:
    value = pva_raw.get(allkinds.pv("STRING"), timeout=10)
    assert "control" not in value and "valueAlarm" not in value


def test_access_rights(allkinds: IocProcess, pyepics: PyepicsClient, ca: Any) -> None:
    for name, writable in (("FLOAT", True), ("RO_FLOAT", False), ("RO_STRING", False),
                           ("DRIVEN", False), ("DRIVE", True), ("HEARTBEAT", False)):
        info = pyepics.info(allkinds.pv(name))
        assert (info["read_access"], info["write_access"]) == (True, writable), name
        rights = ca_pv(ca, allkinds.pv(name)).access_rights
        assert bool(rights & 2) is writable, name
