"""The one table that maps each PV kind to its CA and PVA representation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import caproto as ca_data

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


def display_limits(spec: PVSpec) -> tuple[float, float]:
    """Display limits as EPICS reports them: explicit, else the control limits, else 0..0."""
    return spec.display_limits or spec.limits or (0.0, 0.0)


#: PVA alarm.status codes (alarmStatus_t) for EPICS alarm conditions.
PVA_STATUS_NONE, PVA_STATUS_DEVICE, PVA_STATUS_DRIVER, PVA_STATUS_RECORD = 0, 1, 2, 3
PVA_STATUS_UNDEFINED, PVA_STATUS_CLIENT = 6, 7


def pva_status(ca_status: int) -> int:
    """Map an EPICS (CA) alarm status to the PVA alarm.status code, as QSRV does."""
    if ca_status == 0:
        return PVA_STATUS_NONE
    if ca_status in (9, 10, 11):  # COMM, TIMEOUT, HWLIMIT
        return PVA_STATUS_DEVICE
    if ca_status == 17:  # UDF
        return PVA_STATUS_UNDEFINED
    if ca_status in (2, 21):  # WRITE, WRITE_ACCESS
        return PVA_STATUS_CLIENT
    return PVA_STATUS_RECORD
