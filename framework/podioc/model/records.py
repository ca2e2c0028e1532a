"""The EPICS record type each PV kind corresponds to (what ``DBR_CLASS_NAME``
and ``.RTYP`` report, and whose field names a PV answers)."""

from __future__ import annotations

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
