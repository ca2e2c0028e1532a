"""Channel Access requests answered from their bytes, within their batch.

EVENT_ADD, EVENT_CANCEL, READ_NOTIFY, WRITE and WRITE_NOTIFY of a connected
channel, and CREATE_CHAN, are most of what a busy client sends: EPICS base's
``acctst`` adds and cancels 5 million subscriptions on one channel, ``catime``
reads and writes 10,000 channels at a time, a display or archiver connects
thousands of channels at once. A caproto command object, its pass through the
circuit's coroutines and a reply object cost ~10 us per request; rsrv needs
~1 us.

The parser (:class:`.wire.CommandParser`) leaves such a request as a
:class:`.wire.Hot` tuple. When everything it needs is at hand, it is answered
here, and its reply is a header packed in front of the body kept by
:mod:`.fastpath`:

- the request's channel is connected (caproto's state machine would keep it
  so) and the circuit is under its object limit (:mod:`.limits`);
- the client may read the channel (:mod:`.access`);
- for a read or a new subscription, the channel takes :mod:`.fastpath`
  (a podioc PV, no channel filter, no put in progress, events on), and
  caproto's conversion of the value converts (made here when missing: a
  podioc PV's read never waits) to a body fastpath keeps;
- a cancelled subscription is indexed (:mod:`.subscriptions`), others of
  its kind remain, so the channel's queue stays subscribed, and no caproto
  reply object of the batch waits to be sent before it;
- a put is of a plain DBR type, the channel takes it at once
  (:func:`.puts.writes_now`: no validators, no ``on_put`` hooks), the circuit
  has no access rules, and the channel accepts it (a refused put changed
  nothing; the full path answers the refusal). One value of a DBR type the
  channel lists in ``exact_puts`` (a number or a DBR_STRING to a float PV,
  DBR_SHORT or DBR_LONG to an integer PV) is decoded here: caproto's
  conversion would hand the model the same value;
- a new channel is to a PV by its own name (no field, modifier or filter), on
  a CONNECTED circuit without access rules, with room in the circuit and in
  the channel budget (:mod:`.limits`), and a count that fits the standard
  header.

Its bookkeeping is what the full path leaves behind: caproto's ServerChannel
in the state its ACCESS_RIGHTS and CREATE_CHAN replies leave it in, caproto's
``event_add_commands`` (the :class:`.wire.Hot` tuple stands for the
EventAddRequest: same attribute names), the subscription in the circuit, the
context and the channel's queue, podioc's index and backlog, the put log. Otherwise
:func:`answer` returns None, having changed nothing, and the request takes
the full path as a caproto command (``Hot.full``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from struct import Struct
from typing import Any

import caproto as ca
from caproto import DBR_TYPES, ChannelType

from ...access.acf import Access
from . import access, fastpath, putlog, puts
from .guard import STR_ENC, extract_data
from .subscriptions import detach
from .wire import (
    CMD_ACCESS_RIGHTS,
    CMD_CREATE_CHAN,
    CMD_EVENT_ADD,
    CMD_EVENT_CANCEL,
    CMD_READ_NOTIFY,
    CMD_WRITE_NOTIFY,
    HEADER,
    HEADER_SIZE,
    Hot,
)

_SHORT = 0xFFFF  # larger counts or sizes need the extended header
#: Bytes per element of the plain DBR types (STRING, SHORT, FLOAT, ENUM, CHAR, LONG, DOUBLE).
_ELEMENT_SIZES = {int(t): ctypes.sizeof(DBR_TYPES[t]) for t in ChannelType
                  if t < ChannelType.STS_STRING}
_STRING = int(ChannelType.STRING)
_STRING_SIZE = _ELEMENT_SIZES[_STRING]


def _unpacker(fmt: str) -> Callable[[bytearray], Any]:
    unpack = Struct(fmt).unpack_from
    return lambda raw: unpack(raw, HEADER_SIZE)[0]


def _number_text(raw: bytearray) -> float:
    """A DBR_STRING's text as caproto's conversion to a double reads it: up to the
    first NUL, ``float()`` of the bytes, 0.0 when empty (ValueError: not a number)."""
    text = bytes(raw[HEADER_SIZE:HEADER_SIZE + _STRING_SIZE]).split(b"\0", 1)[0]
    return float(text) if text else 0.0


#: How a count-1 put of these DBR types is decoded for a channel that lists the
#: type in ``exact_puts`` (numbers in network byte order; text to a double).
_SCALARS: dict[int, Callable[[bytearray], Any]] = {
    int(ChannelType.INT): _unpacker(">h"), int(ChannelType.FLOAT): _unpacker(">f"),
    int(ChannelType.LONG): _unpacker(">i"), int(ChannelType.DOUBLE): _unpacker(">d"),
    _STRING: _number_text}


def answer(circuit: Any, hot: Hot, settled: bool) -> bytes | None:
    """The reply to ``hot``, its work done; None (nothing done) when it must take
    the full path. ``settled``: no caproto reply object of this batch is waiting
    to be sent (caproto updates its state when it sends one, so a cancel must
    not overtake it: the reply to a subscription's creation would then name a
    subscription caproto no longer knows)."""
    if hot.command == CMD_READ_NOTIFY:
        return _read(circuit, hot)
    if hot.command == CMD_EVENT_ADD:
        return _subscribe(circuit, hot)
    if hot.command == CMD_EVENT_CANCEL:
        return _cancel(circuit, hot) if settled else None
    if hot.command == CMD_CREATE_CHAN:
        return _create(circuit, hot)
    return _write(circuit, hot)


def _room(circuit: Any) -> bool:
    """The circuit holds fewer channels, subscriptions and requests than its limit
    (else the full path counts the request and closes the circuit)."""
    return bool(circuit.held() < circuit.limits.max_objects)


def _create(circuit: Any, hot: Hot) -> bytes | None:
    """A new channel to a PV by its own name (no field, modifier or filter), on a
    circuit without access rules, with room in the circuit and in the channel
    budget: made as the full path makes it (caproto's ServerChannel, in the state
    its replies leave it in); its ACCESS_RIGHTS and CREATE_CHAN replies."""
    state = circuit.circuit
    cid = hot.sid
    payload = len(hot.raw) - HEADER_SIZE
    if (circuit.policy is not None or cid in state.channels or not _room(circuit)
            or payload > circuit.limits.max_payload
            or state.states.states[ca.SERVER] is not ca.CONNECTED):
        return None
    budget = getattr(circuit.context, "channel_budget", None)
    if budget is not None and budget.full():
        return None  # the full path refuses it and logs why
    name = bytes(hot.raw[HEADER_SIZE:]).rstrip(b"\0").decode(STR_ENC)
    if name not in getattr(circuit.context.pvdb, "pvs", ()) or any(c in name for c in ".${["):
        return None
    db_entry = circuit.context[name]
    data_type, data_count = db_entry.data_type, db_entry.max_length
    if data_count > _SHORT:
        return None  # the reply needs the extended header: caproto's path writes it
    rights = access.ca_rights(circuit, db_entry)
    chan = ca.ServerChannel(name, state, cid)  # registers itself in state.channels
    sid = state.new_channel_id()
    chan.access_rights = rights
    state.connect(chan, data_type, data_count, sid, hot)
    circuit.rights_sent[cid] = rights
    return (HEADER.pack(CMD_ACCESS_RIGHTS, 0, 0, 0, cid, int(rights))
            + HEADER.pack(CMD_CREATE_CHAN, 0, int(data_type), data_count, cid, sid))


def _connected(circuit: Any, hot: Hot, counted: bool) -> Any:
    """The request's channel if it is connected and, for a request the circuit
    counts while it is open (``counted``), the circuit is under its object limit."""
    state = circuit.circuit
    chan = state.channels_sid.get(hot.sid)
    if chan is None or not state._steady(chan) or (counted and not _room(circuit)):
        return None
    return chan


def _open(circuit: Any, hot: Hot) -> tuple[Any, Any, str, tuple[int, int, bytes]] | None:
    """(channel, ChannelData, type name, kept body) when a read or a new
    subscription may be answered here."""
    if _connected(circuit, hot, counted=True) is None:
        return None
    found = fastpath.plain(circuit, hot)
    if found is None:
        return None
    chan, db_entry, type_name = found
    if circuit.policy is not None and access.decide(circuit, db_entry)[0] < Access.READ:
        return None  # the full path refuses it
    try:
        content = fastpath.content_now(db_entry, hot.data_type, type_name)
    except Exception:  # cannot be converted: the full path answers the failure
        return None
    if content is None:
        return None
    kind = fastpath.READ if hot.command == CMD_READ_NOTIFY else fastpath.EVENT
    key = (kind, hot.data_type, hot.data_count)
    kept = fastpath.bodies(db_entry).body(key, content)
    if kept is None:  # the first of its key since the value changed: make it
        fastpath.made(chan, db_entry, key, content, hot.ident)
        kept = fastpath.bodies(db_entry).body(key, content)
    if kept is None or kept[0] > _SHORT or kept[1] > _SHORT:
        return None
    return chan, db_entry, type_name, kept


def _read(circuit: Any, hot: Hot) -> bytes | None:
    found = _open(circuit, hot)
    if found is None:
        return None
    count, size, body = found[3]
    return HEADER.pack(CMD_READ_NOTIFY, size, hot.data_type, count, fastpath.ECA_NORMAL,
                       hot.ident) + body


def _subscribe(circuit: Any, hot: Hot) -> bytes | None:
    if not circuit.events_on.is_set() or hot.ident in circuit.circuit.event_add_commands:
        return None
    found = _open(circuit, hot)
    if found is None:
        return None
    chan, db_entry, type_name, (count, size, body) = found
    circuit.circuit.event_add_commands[hot.ident] = hot
    fastpath.register(circuit, chan, db_entry, type_name, hot)
    return HEADER.pack(CMD_EVENT_ADD, size, hot.data_type, count, fastpath.ECA_NORMAL,
                       hot.ident) + body


def _cancel(circuit: Any, hot: Hot) -> bytes | None:
    state = circuit.circuit
    subid = hot.ident
    added = state.event_add_commands.get(subid)
    if (added is None or added.data_type != hot.data_type or added.sid != hot.sid
            or subid in state.event_cancel_commands):
        return None
    chan = state.channels_sid.get(hot.sid)
    pair = circuit.sub_index.indexed(subid)
    if chan is None or not state._steady(chan) or pair is None or pair[1].channel is not chan:
        return None
    spec, sub = pair
    if sub.data_count > _SHORT or len(circuit.context.subscriptions[spec]) < 2:
        return None  # the last of its kind: the full path unsubscribes the queue
    detach(circuit, spec, sub)
    circuit.forget((pair,))
    del state.event_add_commands[subid]
    return HEADER.pack(CMD_EVENT_ADD, 0, hot.data_type, sub.data_count, hot.sid, subid)


def _write(circuit: Any, hot: Hot) -> bytes | None:
    """A put with nothing to await (:func:`.puts.writes_now`) of a plain DBR type,
    done as the full path does it; b'' (a WRITE) or the WRITE_NOTIFY reply. A put
    the channel refuses has changed nothing: the full path does it again and
    answers the refusal."""
    notify = hot.command == CMD_WRITE_NOTIFY
    size = _ELEMENT_SIZES.get(hot.data_type, 0) * hot.data_count
    payload = len(hot.raw) - HEADER_SIZE
    if hot.data_type == _STRING and hot.data_count == 1 and 0 < payload < size:
        size = payload  # libca sends one string's text and NUL only, padded to 8
    if (not size or payload < size or payload > circuit.limits.max_payload
            or circuit.policy is not None):
        return None  # not a plain type; short; too large; access rules (the full path)
    chan = _connected(circuit, hot, counted=notify)
    if chan is None:
        return None
    db_entry = circuit.context[chan.name]
    data_type = fastpath.TYPES[hot.data_type]
    if not puts.writes_now(db_entry, data_type) or (notify and db_entry.length > _SHORT):
        return None
    exact = hot.data_count == 1 and hot.data_type in getattr(db_entry, "exact_puts", ())
    logged = putlog.wanted(circuit)
    try:
        data = (_SCALARS[hot.data_type](hot.raw) if exact else extract_data(
            memoryview(hot.raw)[HEADER_SIZE:HEADER_SIZE + size], data_type, hot.data_count))
        old = putlog.current(db_entry) if logged else None
        stored = (puts.write_value_now(circuit, chan, db_entry, data) if exact
                  else puts.write_now(circuit, chan, db_entry, data, data_type))
    except Exception:  # refused (nothing changed) or undecodable: the full path answers
        return None
    if logged:
        puts.log_accepted(circuit, chan, db_entry, data, hot.data_type, old, stored)
    if not notify:
        return b""
    return HEADER.pack(CMD_WRITE_NOTIFY, 0, int(chan.native_data_type), db_entry.length,
                       fastpath.ECA_NORMAL, hot.ident)
