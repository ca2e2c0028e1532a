"""DBR types answered as an EPICS base IOC answers them, where caproto differs.

- ``DBR_GR_STRING``/``DBR_CTRL_STRING`` have the ``DBR_STS_STRING`` layout
  (status, severity, value); caproto sends the ``DBR_TIME_STRING`` layout, so
  clients read the time stamp as text;
- a float as a string honours the PV's precision as EPICS base's
  ``cvtDoubleToString`` does (``25.00``, not ``25.10120312076999``);
- ``DBR_STSACK_STRING`` carries the value as a string and the acknowledge
  state (:class:`AckState`); caproto sends an empty value;
- ``DBR_PUT_ACKT``/``DBR_PUT_ACKS`` change that state as ``dbPut`` does;
- ``DBR_CLASS_NAME`` is the record type (caproto: "caproto").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from caproto import DBR_TYPES, CaprotoError, ChannelType, backend, native_type

from ...errors import PutRefused
from .guard import ConversionDirection

#: String requests whose payload is a value as text.
STRING_TYPES = frozenset({ChannelType.STRING, ChannelType.STS_STRING,
                          ChannelType.TIME_STRING, ChannelType.GR_STRING,
                          ChannelType.CTRL_STRING})
#: Requests EPICS base answers in the DBR_STS_STRING layout.
STS_LAYOUT = frozenset({ChannelType.GR_STRING, ChannelType.CTRL_STRING})
_MAX_STRING = 39  # bytes of a DBR string before its NUL


def double_to_string(value: float, precision: int) -> str:
    """``value`` as EPICS base's ``cvtDoubleToString`` writes it with ``precision``.

    Fixed point with half-up rounding for |value| <= 1e7 and precision <= 8;
    beyond that ``%.*f`` (precision at most 3) up to 1e16, then ``%*.*e``.
    """
    precision = max(0, precision)
    if math.isnan(value) or precision > 8 or abs(value) > 1e7:
        if precision > 8 or abs(value) > 1e16 or math.isinf(value):
            digits = min(precision, 17)
            return f"{value:{digits + 7}.{digits}e}"
        return f"{value:.{min(precision, 3)}f}"
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole = int(value)
    scale = 10 ** precision
    fraction = (int((value - whole) * scale * 10) + 5) // 10
    if fraction >= scale:
        whole += 1
        fraction -= scale
    if precision == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{precision}d}"


def float_strings(values: Any, precision: int) -> list[bytes]:
    """Each element of a float value (scalar or array) as DBR string bytes."""
    items = values.tolist() if hasattr(values, "tolist") else values
    if not isinstance(items, list):
        items = [items]
    return [double_to_string(float(v), precision).encode()[:_MAX_STRING] for v in items]


@dataclass(slots=True)
class AckState:
    """A PV's alarm acknowledgement (EPICS record fields ACKT and ACKS).

    ``ackt``: transient alarms must be acknowledged (default yes); ``acks``:
    the highest severity not yet acknowledged.
    """

    ackt: bool = True
    acks: int = 0

    def on_severity(self, severity: int) -> bool:
        """Follow a new alarm severity as ``recGblResetAlarms`` does; True on change."""
        if severity > self.acks or (not self.ackt and severity != self.acks):
            self.acks = severity
            return True
        return False

    def put_acks(self, severity: int) -> bool:
        """Acknowledge up to ``severity`` (a DBR_PUT_ACKS write, as ``dbPut``: the
        unacknowledged severity is cleared when ``severity`` reaches it)."""
        if severity >= self.acks and self.acks:
            self.acks = 0
            return True
        return False

    def put_ackt(self, ackt: bool, current: int) -> bool:
        """Set whether transient alarms need acknowledging (a DBR_PUT_ACKT write);
        without, the unacknowledged severity drops to the current one."""
        changed = ackt != self.ackt
        self.ackt = ackt
        if not ackt and self.acks > current:
            self.acks = current
            changed = True
        return changed


def stsack(status: int, severity: int, ack: AckState, value: bytes) -> Any:
    """A DBR_STSACK_STRING with the value as text and the acknowledge state."""
    dbr = DBR_TYPES[ChannelType.STSACK_STRING]()
    dbr.status, dbr.severity = status, severity
    dbr.ackt, dbr.acks = int(ack.ackt), ack.acks
    dbr.value = value[:_MAX_STRING]
    return dbr


def class_name(record_type: str) -> Any:
    """A DBR_CLASS_NAME naming the record type."""
    dbr = DBR_TYPES[ChannelType.CLASS_NAME]()
    dbr.value = record_type.encode()
    return dbr


def from_wire(channel: Any, data: Any, data_type: ChannelType, name: str) -> Any:
    """A client's write converted to ``channel``'s type (caproto's conversion);
    :class:`PutRefused` naming ``name`` when it cannot be."""
    try:
        return backend.convert_values(
            values=data, from_dtype=native_type(data_type), to_dtype=channel.data_type,
            string_encoding=channel.string_encoding,
            enum_strings=getattr(channel, "enum_strings", None),
            direction=ConversionDirection.FROM_WIRE)
    except (CaprotoError, ValueError, TypeError) as exc:  # e.g. an unknown enum string
        reason = str(exc) or str(exc.__cause__ or "") or type(exc).__name__
        raise PutRefused(f"{name}: {reason}") from None
