"""The EPICS record type each PV kind corresponds to (what ``DBR_CLASS_NAME``
and ``.RTYP`` report) and the record fields a PV answers (``P:X.DESC``).

Fields are described here, not made: a protocol makes a field's channel when
a client first asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .kinds import Kind
from .spec import PVSpec

#: kind -> (record type when read-only, record type when writable).
RECORD_TYPES: dict[Kind, tuple[str, str]] = {
    Kind.FLOAT: ("ai", "ao"),
    Kind.INT: ("longin", "longout"),
    Kind.BOOL: ("bi", "bo"),
    Kind.ENUM: ("mbbi", "mbbo"),
    Kind.STRING: ("stringin", "stringout"),
    Kind.ARRAY: ("waveform", "waveform"),
}


def record_type(spec: PVSpec) -> str:
    """The record type of a PV: an input record when read-only, an output one when
    writable (arrays are waveforms either way)."""
    return RECORD_TYPES[spec.kind][int(spec.writable)]


#: Field kinds: how a field's value is typed on the wire.
STRING, DOUBLE, LONG, MENU = "string", "double", "long", "menu"
#: Menu choices of the menu fields (EPICS menuAlarmSevr, menuAlarmStat, menuFtype).
SEVERITY_CHOICES = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")
STATUS_CHOICES = ("NO_ALARM", "READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE", "COS",
                  "COMM", "TIMEOUT", "HWLIMIT", "CALC", "SCAN", "LINK", "SOFT", "BAD_SUB",
                  "UDF", "DISABLE", "SIMM", "READ_ACCESS", "WRITE_ACCESS")
FTVL_CHOICES = ("STRING", "CHAR", "UCHAR", "SHORT", "USHORT", "LONG", "ULONG", "INT64",
                "UINT64", "FLOAT", "DOUBLE", "ENUM")
_FTVL = {"float64": "DOUBLE", "float32": "FLOAT", "int32": "LONG", "int16": "SHORT",
         "uint8": "UCHAR"}
#: Fields whose value follows the PV's state (the others are fixed by the spec).
LIVE_FIELDS = frozenset({"SEVR", "STAT", "NORD"})
STATE_FIELDS = ("ZRST", "ONST", "TWST", "THST", "FRST", "FVST", "SXST", "SVST", "EIST",
                "NIST", "TEST", "ELST", "TVST", "TTST", "FTST", "FFST")


@dataclass(frozen=True)
class FieldDef:
    """One record field a PV answers: its wire kind, menu choices (for menus)."""

    kind: str
    choices: tuple[str, ...] = ()


def display_limits(spec: PVSpec) -> tuple[float, float]:
    """Display limits as EPICS reports them: explicit, else the control limits, else 0..0."""
    return spec.display_limits or spec.limits or (0.0, 0.0)


def control_limits(spec: PVSpec) -> tuple[float, float]:
    """Control limits as EPICS reports them: explicit, else the display limits (an ai
    record reports HOPR/LOPR), else 0..0."""
    return spec.limits or spec.display_limits or (0.0, 0.0)


def field_names(spec: PVSpec) -> dict[str, FieldDef]:
    """The record fields (besides VAL, the PV itself) of a PV's record type."""
    out = {"NAME": FieldDef(STRING), "RTYP": FieldDef(STRING), "DESC": FieldDef(STRING),
           "SEVR": FieldDef(MENU, SEVERITY_CHOICES), "STAT": FieldDef(MENU, STATUS_CHOICES)}
    kind = spec.kind
    if spec.is_numeric:
        out.update({f: FieldDef(DOUBLE) for f in ("HOPR", "LOPR")})
        out["EGU"] = FieldDef(STRING)
        if kind is not Kind.ARRAY:
            out.update({f: FieldDef(DOUBLE) for f in ("HIHI", "HIGH", "LOW", "LOLO", "HYST",
                                                      "MDEL", "ADEL")})
            out.update({f: FieldDef(MENU, SEVERITY_CHOICES)
                        for f in ("HHSV", "HSV", "LSV", "LLSV")})
            if spec.writable:
                out.update({f: FieldDef(DOUBLE) for f in ("DRVH", "DRVL")})
    if kind in (Kind.FLOAT, Kind.ARRAY):
        out["PREC"] = FieldDef(LONG)
    if kind is Kind.BOOL:
        out.update({f: FieldDef(STRING) for f in ("ZNAM", "ONAM")})
    if kind is Kind.ENUM:
        out.update({f: FieldDef(STRING) for f in STATE_FIELDS})
    if kind is Kind.ARRAY:
        out.update({"NELM": FieldDef(LONG), "NORD": FieldDef(LONG),
                    "FTVL": FieldDef(MENU, FTVL_CHOICES)})
    return out


def split_field(name: str) -> tuple[str, str]:
    """``"P:X.DESC"`` -> ``("P:X", "DESC")``; a name without a field -> (name, "")."""
    base, dot, field = name.rpartition(".")
    if dot and field.isalnum() and field.isupper() and 2 <= len(field) <= 4:
        return base, field
    return name, ""


def field_value(spec: PVSpec, field: str, pv_name: str, severity: int = 0, status: int = 0,
                length: int = 0) -> Any:
    """A field's value from the spec (and, for SEVR/STAT/NORD, the given state)."""
    alarm = spec.alarm
    lo, hi = display_limits(spec)
    limits = {"HOPR": hi, "LOPR": lo,
              "DRVH": (spec.limits or (0.0, 0.0))[1], "DRVL": (spec.limits or (0.0, 0.0))[0]}
    if field in limits:
        return float(limits[field])
    if field in ("HIHI", "HIGH", "LOW", "LOLO"):
        value = getattr(alarm, {"HIHI": "hihi", "HIGH": "high", "LOW": "low",
                                "LOLO": "lolo"}[field]) if alarm else None
        return 0.0 if value is None else float(value)
    if field in ("HHSV", "HSV", "LSV", "LLSV"):
        if alarm is None:
            return 0
        attr = {"HHSV": "hihi", "HSV": "high", "LSV": "low", "LLSV": "lolo"}[field]
        return int(getattr(alarm, f"{attr}_severity")) if getattr(alarm, attr) is not None else 0
    simple: dict[str, Any] = {
        "NAME": pv_name, "RTYP": record_type(spec), "DESC": spec.description[:40],
        "EGU": spec.units, "PREC": spec.display_precision,
        "HYST": float(alarm.hysteresis) if alarm else 0.0,
        # -1: every change is posted (podioc's default); else the deadband
        "MDEL": -1.0 if spec.deadband is None else float(spec.deadband),
        "ADEL": -1.0 if spec.archive_deadband is None else float(spec.archive_deadband),
        "SEVR": severity, "STAT": status, "NELM": spec.max_length, "NORD": length,
        "FTVL": FTVL_CHOICES.index(_FTVL.get(spec.dtype, "DOUBLE")),
        "ZNAM": spec.choices[0] if spec.kind is Kind.BOOL else "",
        "ONAM": spec.choices[1] if spec.kind is Kind.BOOL else "",
    }
    if field in STATE_FIELDS:
        index = STATE_FIELDS.index(field)
        return spec.choices[index] if index < len(spec.choices) else ""
    return simple[field]
