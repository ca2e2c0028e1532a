"""Channel Access requests answered from their bytes, within their batch.

EVENT_ADD, EVENT_CANCEL and READ_NOTIFY of a connected channel are most of
what a busy client sends: EPICS base's ``acctst`` adds and cancels 5 million
subscriptions on one channel, ``catime`` reads 10,000 channels at a time. A
caproto command object, its pass through the circuit's coroutines and a reply
object cost ~15 us per request; rsrv needs ~1 us.

The parser (:class:`.wire.CommandParser`) leaves such a request as a
:class:`.wire.Hot` tuple. When everything it needs is at hand, it is answered
here, and its reply is a header packed in front of the body kept by
:mod:`.fastpath`:

- the channel is connected (caproto's state machine would keep it so) and
  the circuit is under its object limit (:mod:`.limits`);
- the client may read the channel (:mod:`.access`);
- for a read or a new subscription, the channel takes :mod:`.fastpath`
  (a podioc PV, no channel filter, no put in progress, events on), and
  caproto's conversion of the value and its encoded body are cached;
- a cancelled subscription is indexed (:mod:`.subscriptions`), others of
  its kind remain, so the channel's queue stays subscribed, and no caproto
  reply object of the batch waits to be sent before it.

Its bookkeeping is what the full path leaves behind: caproto's
``event_add_commands`` (the :class:`.wire.Hot` tuple stands for the
EventAddRequest: same attribute names), the subscription in the circuit, the
context and the channel's queue, podioc's index and backlog. Otherwise
:func:`answer` returns None, having changed nothing, and the request takes
the full path as a caproto command (``Hot.full``).
"""

from __future__ import annotations

from typing import Any

from ...access.acf import Access
from . import access, fastpath
from .subscriptions import detach
from .wire import CMD_EVENT_ADD, CMD_READ_NOTIFY, HEADER, Hot

_ECA_NORMAL = 1  # the status field of a successful reply (caproto's ECA_NORMAL value)
_EVENT, _READ = 0, 1  # fastpath's request kinds
_SHORT = 0xFFFF  # larger counts or sizes need the extended header


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
    return _cancel(circuit, hot) if settled else None


def _open(circuit: Any, hot: Hot) -> tuple[Any, Any, str, tuple[int, int, bytes]] | None:
    """(channel, ChannelData, type name, kept body) when a read or a new
    subscription may be answered here."""
    state = circuit.circuit
    chan = state.channels_sid.get(hot.sid)
    if chan is None or not state._steady(chan):
        return None
    if (len(state.channels) + len(state.event_add_commands) + len(state._ioids)
            >= circuit.limits.max_objects):
        return None  # the full path counts it and closes the circuit
    found = fastpath.plain(circuit, hot)
    if found is None:
        return None
    chan, db_entry, type_name = found
    if circuit.policy is not None and access.decide(circuit, db_entry)[0] < Access.READ:
        return None  # the full path refuses it
    content = db_entry._content.get(type_name)
    if content is None:
        return None
    kind = _READ if hot.command == CMD_READ_NOTIFY else _EVENT
    kept = fastpath.bodies(db_entry).body((kind, hot.data_type, hot.data_count), content)
    if kept is None or kept[0] > _SHORT or kept[1] > _SHORT:
        return None
    return chan, db_entry, type_name, kept


def _read(circuit: Any, hot: Hot) -> bytes | None:
    found = _open(circuit, hot)
    if found is None:
        return None
    count, size, body = found[3]
    return HEADER.pack(CMD_READ_NOTIFY, size, hot.data_type, count, _ECA_NORMAL,
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
    return HEADER.pack(CMD_EVENT_ADD, size, hot.data_type, count, _ECA_NORMAL,
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
    circuit.sub_index.forget((pair,))
    circuit.backlog.discard(subid)
    del state.event_add_commands[subid]
    return HEADER.pack(CMD_EVENT_ADD, 0, hot.data_type, sub.data_count, hot.sid, subid)
