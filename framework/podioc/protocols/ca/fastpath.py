"""Reads and new subscriptions answered from cached encodings, in the same write.

caproto converts a channel's value for the wire on every read, and sends a new
subscription's first value through the context's update queue, the routing per
subscription and the circuit's backlog, converting it again for each one.
EPICS base's ``acctst`` makes and cancels 500 subscriptions 10,000 times on
one channel, and ``catime`` sends thousands of reads in one TCP message: most
of their time went there. Here, for a plain podioc channel (no channel filter)
on a circuit with events on and no put in progress:

- a subscription is registered in exactly caproto's tables and its first
  value is a reply of the batch being answered;
- a READ_NOTIFY is answered from caproto's cache of conversions
  (``ChannelData._content``, which it fills for subscriptions; podioc's channels
  drop it on every change, see :mod:`.channels`);
- the encoded message body (up to :data:`MAX_CACHED` bytes) is kept per
  channel, request kind, data type and count while that cached conversion
  stays the same, so each further reply is a new header in front of the same
  buffers.

Every other case takes caproto's path (:class:`.circuit.Circuit`).
"""

from __future__ import annotations

from typing import Any

import caproto as ca
from caproto import ChannelType

from .guard import (
    EventAddResponseHeader,
    ReadNotifyResponseHeader,
    Subscription,
    SubscriptionSpec,
    ensure_eca_value,
)
from .updates import event_add_response

TYPES = {int(t): t for t in ChannelType}
_TYPE_NAMES = {int(t): t.name for t in ChannelType}
_PLAIN = (None, None, None, None)  # caproto's ChannelFilter of a name without a filter
ECA_NORMAL = ensure_eca_value(1)  # the status field of a successful reply
EVENT, READ = 0, 1  # request kinds: a subscription's first value, a read
#: Bodies up to this size are kept; larger ones cost their copy anyway.
MAX_CACHED = 1 << 14
Key = tuple[int, int, int]  # (request kind, data type, requested count)
Body = tuple[int, int, tuple[Any, ...]]  # (data count, payload size, buffers)


class Bodies:
    """A channel's encoded reply bodies, each valid while caproto's cached conversion
    it was made from is the same object."""

    def __init__(self) -> None:
        self.cached: dict[Key, tuple[Any, Body]] = {}
        self.joined: dict[Key, tuple[Any, bytes]] = {}

    def get(self, key: Key, content: Any) -> Body | None:
        """The body encoded from ``content`` (that very object), if kept."""
        entry = self.cached.get(key)
        if entry is None or entry[0] is not content:
            return None
        return entry[1]

    def keep(self, key: Key, content: Any, message: Any) -> Any:
        """Keep ``message``'s body, encoded from ``content``, if it is small (a large
        array's body would keep an old value alive after a change); returns ``message``."""
        header = message.header
        if header.payload_size <= MAX_CACHED:
            buffers = tuple(message.buffers)
            self.cached[key] = (content, (header.data_count, header.payload_size, buffers))
            self.joined.pop(key, None)
        else:
            self.cached.pop(key, None)
        return message

    def body(self, key: Key, content: Any) -> tuple[int, int, bytes] | None:
        """(data count, payload size, the body as one bytes) encoded from ``content``,
        if kept (:mod:`.hotlane`'s replies are a header in front of it)."""
        hit = self.get(key, content)
        if hit is None:
            return None
        joined = self.joined.get(key)
        if joined is None or joined[0] is not content:
            try:
                joined = self.joined[key] = (content, b"".join(hit[2]))
            except (TypeError, BufferError):  # a buffer that is not contiguous bytes
                return None
        return hit[0], hit[1], joined[1]


def plain(circuit: Any, command: Any) -> tuple[Any, Any, str] | None:
    """(channel, ChannelData, type name) when ``command`` may take the fast path."""
    chan = circuit.circuit.channels_sid.get(command.sid)
    if (chan is None or tuple(chan.channel_filter) != _PLAIN or chan.name.endswith("$")
            or not circuit.write_event.is_set()):
        return None
    db_entry = circuit.context[chan.name]
    type_name = _TYPE_NAMES.get(command.data_type)
    if type_name is None or getattr(db_entry, "pv", None) is None:
        return None  # only podioc's channels drop caproto's cache on every change
    return chan, db_entry, type_name


def bodies(db_entry: Any) -> Bodies:
    bodies: Bodies | None = getattr(db_entry, "bodies", None)
    if bodies is None:
        bodies = db_entry.bodies = Bodies()
    return bodies


_MESSAGES = {EVENT: (ca.EventAddResponse, EventAddResponseHeader),
             READ: (ca.ReadNotifyResponse, ReadNotifyResponseHeader)}


def _cached(db_entry: Any, key: Key, content: Any, ident: int) -> Any:
    """The reply (subscription or I/O id ``ident``) from a kept body, or None."""
    hit = bodies(db_entry).get(key, content)
    if hit is None:
        return None
    count, size, buffers = hit
    cls, header = _MESSAGES[key[0]]
    return cls.from_components(header(size, key[1], count, ECA_NORMAL, ident), *buffers)


def content_now(db_entry: Any, data_type: int, type_name: str) -> Any:
    """caproto's cached conversion of the value to ``data_type``; if missing, made at
    once (no event-loop turn) for a channel whose read never waits (``reads_now``:
    podioc's PV channels), else None. Raises caproto's conversion error as the
    read does."""
    content = db_entry._content.get(type_name)
    if content is None and getattr(db_entry, "reads_now", False):
        reading = db_entry.read(ChannelType(data_type))
        try:
            reading.send(None)
        except StopIteration as done:
            content = db_entry._content[type_name] = done.value
        else:  # it waited after all: leave the read to the event loop
            reading.close()
            raise RuntimeError(f"{type(db_entry).__name__}.read waited")
    return content


async def _content(db_entry: Any, data_type: int, type_name: str) -> Any:
    """caproto's cached conversion of the value to ``data_type``, made (and cached, as
    caproto's ``subscribe`` does) if missing."""
    content = db_entry._content.get(type_name)
    if content is None:
        content = db_entry._content[type_name] = await db_entry.read(ChannelType(data_type))
    return content


async def subscribe(circuit: Any, command: Any) -> list[Any] | None:
    """Make the subscription and return its first value as the reply; None when this
    request must take caproto's path (which also answers a value that cannot be
    converted to the type asked for)."""
    found = plain(circuit, command)
    if found is None or not circuit.events_on.is_set():
        return None
    chan, db_entry, type_name = found
    try:
        content = await _content(db_entry, command.data_type, type_name)
    except ca.CaprotoConversionError:
        return None
    key = (EVENT, command.data_type, command.data_count)
    reply = _cached(db_entry, key, content, command.subscriptionid)
    if reply is None:
        reply = made(chan, db_entry, key, content, command.subscriptionid)
    register(circuit, chan, db_entry, type_name, command)
    return [reply]


def register(circuit: Any, chan: Any, db_entry: Any, type_name: str, command: Any) -> None:
    """Record the subscription ``command`` asks for where caproto keeps its own
    (circuit, context, the channel's queue) and in podioc's index."""
    filt = chan.channel_filter
    sub = Subscription(mask=command.mask, channel_filter=filt, channel=chan, circuit=circuit,
                       data_type=TYPES[command.data_type],
                       data_count=command.data_count,
                       subscriptionid=command.subscriptionid, db_entry=db_entry)
    spec = SubscriptionSpec(db_entry=db_entry, data_type_name=type_name, mask=command.mask,
                            channel_filter=filt)
    circuit.subscriptions[spec].append(sub)
    circuit.context.subscriptions[spec].append(sub)
    db_entry._queues[circuit.context.subscription_queue][filt.sync][type_name].add(spec)
    circuit.sub_index.add(spec, sub)


async def read(circuit: Any, command: Any) -> list[Any] | None:
    """The READ_NOTIFY reply; None when this request must take caproto's path. A value
    that cannot be converted raises caproto's conversion error, as caproto's read does."""
    found = plain(circuit, command)
    if found is None:
        return None
    chan, db_entry, type_name = found
    content = await _content(db_entry, command.data_type, type_name)
    key = (READ, command.data_type, command.data_count)
    reply = _cached(db_entry, key, content, command.ioid)
    if reply is not None:
        return [reply]
    return [made(chan, db_entry, key, content, command.ioid)]


def made(chan: Any, db_entry: Any, key: Key, content: Any, ident: int) -> Any:
    """The reply (I/O or subscription id ``ident``) made from ``content``, its body
    kept for the next ones of the same key."""
    kind, data_type, data_count = key
    metadata, values = content
    if kind == READ:
        if data_count > 0:
            values = values[:data_count]
        message = chan.read(data=values, data_type=data_type,
                            data_count=db_entry.calculate_length(values), status=1,
                            ioid=ident, metadata=metadata, notify=True)
    else:
        count = data_count or len(values)
        if count != len(values):
            values = values[:count]
        message = event_add_response(values, metadata, data_type, count, ident)
    return bodies(db_entry).keep(key, content, message)
