"""What the put log (:mod:`podioc.putlog`) is told about a CA put.

Called from :mod:`.puts` (accepted puts and those the model or caproto
refused) and :mod:`.access` (puts the access rules refused). The PV is the
channel name the client used (``P:X``, ``P:X.VAL``, ``P:X.DESC``); an alarm
acknowledgement (DBR_PUT_ACKT/ACKS) is logged as ``P:X.ACKT``/``P:X.ACKS``,
the record fields EPICS base writes for it. The host is the circuit's peer
address, the user the name the client sent (CA_PROTO_CLIENT_NAME).
"""

from __future__ import annotations

from typing import Any

import caproto as ca

from ...access.hosts import normalize_ip
from ...model.kinds import Kind

_ACK_FIELDS = {ca.ChannelType.PUT_ACKT: "ACKT", ca.ChannelType.PUT_ACKS: "ACKS"}


def wanted(circuit: Any) -> bool:
    """True when the server keeps a put log (else :func:`record` does nothing)."""
    return getattr(circuit.context, "putlog", None) is not None


def current(db_entry: Any) -> Any:
    """The channel's value now (a PV as ``.value`` reads it, a field as served)."""
    pv = getattr(db_entry, "pv", None)
    if pv is not None and not getattr(db_entry, "field", ""):
        return pv.value
    return getattr(db_entry, "value", None)


def requested(db_entry: Any, data: Any, data_type: int) -> Any:
    """The value a WRITE carries (``data``, of DBR type ``data_type``), as sent: one
    element unwrapped unless the PV is an array."""
    if isinstance(data, bytes | bytearray | str):
        return data
    try:
        count = len(data)
    except TypeError:
        return data
    pv = getattr(db_entry, "pv", None)
    if count == 1 and (pv is None or pv.spec.kind is not Kind.ARRAY
                       or data_type in _ACK_FIELDS):
        return data[0]
    return data


def record(circuit: Any, chan: Any, data_type: int, old: Any, new: Any,
           reason: str | None = None) -> None:
    """Log one put (of DBR type ``data_type``) of this circuit's client (``reason``
    None: accepted)."""
    if not wanted(circuit):
        return
    putlog = circuit.context.putlog
    name = chan.name
    ack = _ACK_FIELDS.get(data_type)
    if ack is not None:
        name, old = f"{name}.{ack}", None
    putlog.record("ca", name, old, new, normalize_ip(str(circuit.circuit.address[0])),
                  circuit.client_username or "", reason)
