"""The one table that maps each PV kind to its CA and PVA representation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import caproto as ca_data

from ..model.alarms import Status
from ..model.kinds import Kind
from ..model.spec import PVSpec


@dataclass(frozen=True)
class Mapping:
    """How one kind (or array element type) is served on each protocol."""

    ca_class: type[Any]
    pva_code: str  # p4p type code of the value field ('' = NTEnum)


_SCALARS: dict[Kind, Mapping] = {
    Kind.FLOAT: Mapping(ca_data.ChannelDouble, "d"),
    Kind.INT: Mapping(ca_data.ChannelInteger, "i"),
    Kind.BOOL: Mapping(ca_data.ChannelEnum, ""),
    Kind.ENUM: Mapping(ca_data.ChannelEnum, ""),
    Kind.STRING: Mapping(ca_data.ChannelString, "s"),
}

_ARRAYS: dict[str, Mapping] = {
    "float64": Mapping(ca_data.ChannelDouble, "ad"),
    "float32": Mapping(ca_data.ChannelFloat, "af"),
    "int32": Mapping(ca_data.ChannelInteger, "ai"),
    "int16": Mapping(ca_data.ChannelShort, "ah"),
    "uint8": Mapping(ca_data.ChannelByte, "aB"),
}


def mapping(spec: PVSpec) -> Mapping:
    """The CA/PVA mapping for a spec."""
    return _ARRAYS[spec.dtype] if spec.kind is Kind.ARRAY else _SCALARS[spec.kind]


#: PVA alarm.status codes (alarmStatus_t).
PVA_STATUS_NONE, PVA_STATUS_DEVICE, PVA_STATUS_DRIVER, PVA_STATUS_RECORD = 0, 1, 2, 3
PVA_STATUS_DB, PVA_STATUS_UNDEFINED = 4, 6
#: EPICS alarm status -> PVA alarm.status, as QSRV maps them (pvif.cpp ``mapStatus``).
_PVA_STATUS = {
    **dict.fromkeys((1, 2, 3, 4, 5, 6, 7, 8, 11), PVA_STATUS_DEVICE),  # READ..COS, HWLIMIT
    **dict.fromkeys((9, 10, 17), PVA_STATUS_DRIVER),  # COMM, TIMEOUT, UDF
    **dict.fromkeys((12, 13, 14, 15, 16), PVA_STATUS_RECORD),  # CALC, SCAN, LINK, SOFT, BAD_SUB
    **dict.fromkeys((18, 19, 20, 21), PVA_STATUS_DB),  # DISABLE, SIMM, READ/WRITE_ACCESS
    0: PVA_STATUS_NONE,
}


def pva_status(ca_status: int) -> int:
    """Map an EPICS (CA) alarm status to the PVA alarm.status code, as QSRV does."""
    return _PVA_STATUS.get(ca_status, PVA_STATUS_UNDEFINED)


def pva_message(ca_status: int, message: str) -> str:
    """The PVA alarm.message as QSRV sends it: the record's message (AMSG) when it
    has one, else the alarm status name (``HIGH``, ``NO_ALARM``, ...)."""
    if message:
        return message
    try:
        return Status(ca_status).name
    except ValueError:
        return "???"
