"""Every caproto name podioc relies on beyond caproto's public API, in one place.

podioc's CA server is caproto's asyncio server with parts replaced (see the
docstrings of :mod:`.circuit`, :mod:`.context` and :mod:`.discovery`). That
needs names from caproto's private modules, methods overridden with the
signature caproto calls them with, attributes caproto keeps for itself and
one log message. They are listed here, each with the reason, and
``tests/unit/test_caproto_guard.py`` asserts that each still exists with the
expected signature, so a caproto release that changes one fails that test
with the name in the message. Other modules import these names from here;
nothing outside ``protocols/ca/`` touches caproto's private names.

Keep the caproto pin in ``pyproject.toml`` and widen it only when the guard
test passes on the newer version.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from caproto._commands import (
    STR_ENC,
    Commands,
    ensure_eca_value,
    extract_data,
    pad_buffers,
    parse_metadata,
)
from caproto._data import SubscriptionUpdate
from caproto._headers import (
    EventAddResponseHeader,
    ExtendedMessageHeader,
    MessageHeader,
    ReadNotifyResponseHeader,
)
from caproto._utils import ConversionDirection, apply_deadband_filter
from caproto.asyncio.server import AsyncioEvent, VirtualCircuit
from caproto.asyncio.server import Context as AsyncioContext
from caproto.server.common import (
    DisconnectedCircuit,
    LoopExit,
    Subscription,
    SubscriptionSpec,
    host_endian,
)

__all__ = [
    "STR_ENC",
    "AsyncioContext",
    "AsyncioEvent",
    "Commands",
    "ConversionDirection",
    "DisconnectedCircuit",
    "EventAddResponseHeader",
    "ExtendedMessageHeader",
    "LoopExit",
    "MessageHeader",
    "ReadNotifyResponseHeader",
    "Subscription",
    "SubscriptionSpec",
    "SubscriptionUpdate",
    "VirtualCircuit",
    "apply_deadband_filter",
    "ensure_eca_value",
    "extract_data",
    "host_endian",
    "pad_buffers",
    "parse_metadata",
]


@dataclass(frozen=True)
class Import:
    """A name imported from a caproto module that is private or not re-exported."""

    module: str
    name: str
    why: str


@dataclass(frozen=True)
class Override:
    """A caproto method podioc overrides or calls, with the signature it expects."""

    owner: str  # "module:Class"
    name: str
    signature: str  # parameters as :func:`plain_signature` renders them
    why: str


def plain_signature(function: Callable[..., Any]) -> str:
    """A function's parameters without annotations, e.g. ``(self, command, *, x=1)``."""
    plain = [p.replace(annotation=inspect.Parameter.empty)
             for p in inspect.signature(function).parameters.values()]
    return str(inspect.Signature(plain))


@dataclass(frozen=True)
class Attribute:
    """An attribute of a caproto object that podioc reads or writes."""

    owner: str  # key of the instance built by the guard test
    name: str
    why: str


@dataclass(frozen=True)
class SourceText:
    """Text in caproto's source that podioc depends on (a log message it filters, a
    value it passes on)."""

    function: str  # "module:Class.method"
    text: str
    why: str


_SANSIO = "caproto._circuit:VirtualCircuit"
_BROADCASTER = "caproto._broadcaster:Broadcaster"
_CIRCUIT = "caproto.asyncio.server:VirtualCircuit"
_COMMON = "caproto.server.common:VirtualCircuit"
_CONTEXT = "caproto.asyncio.server:Context"
_COMMON_CONTEXT = "caproto.server.common:Context"
_DATA = "caproto._data:ChannelData"

IMPORTS = (
    Import("caproto._commands", "Commands", "message classes by command id, to parse TCP input"),
    Import("caproto._commands", "ensure_eca_value", "status code of a zero-copy update message"),
    Import("caproto._commands", "extract_data", "a put's values from its bytes, as caproto's "
           "WriteRequest.data reads them (hotlane.py)"),
    Import("caproto._commands", "STR_ENC", "a channel name's encoding, as "
           "CreateChanRequest.name decodes it (hotlane.py)"),
    Import("caproto._commands", "pad_buffers", "padding of a zero-copy update message"),
    Import("caproto._commands", "parse_metadata", "DBR metadata of a zero-copy update message"),
    Import("caproto._data", "SubscriptionUpdate",
           "what ChannelData.publish queues; the coalescing queue reads its fields"),
    Import("caproto._headers", "MessageHeader", "parse a standard header in linear time"),
    Import("caproto._headers", "ExtendedMessageHeader", "parse an extended header"),
    Import("caproto._headers", "EventAddResponseHeader",
           "header of a zero-copy update, and of a cached first value (fastpath.py)"),
    Import("caproto._headers", "ReadNotifyResponseHeader",
           "header of a read answered from a cached encoding (fastpath.py)"),
    Import("caproto._utils", "ConversionDirection", "convert a client's put like caproto"),
    Import("caproto._utils", "apply_deadband_filter", "caproto's dbnd filter per update"),
    Import("caproto.asyncio.server", "AsyncioEvent", "caproto's event, made task-free"),
    Import("caproto.asyncio.server", "VirtualCircuit", "base of podioc's circuit"),
    Import("caproto.asyncio.server", "Context", "base of podioc's server context"),
    Import("caproto.server.common", "DisconnectedCircuit", "how caproto ends a circuit"),
    Import("caproto.server.common", "LoopExit", "caproto's unrecoverable protocol error"),
    Import("caproto.server.common", "host_endian", "argument of apply_deadband_filter"),
    Import("caproto.server.common", "SubscriptionSpec",
           "key of a circuit's subscriptions, rebuilt to index a new one by id"),
    Import("caproto.server.common", "Subscription",
           "a subscription made in place (fastpath.py), as caproto makes it"),
)

OVERRIDES = (
    Override(_SANSIO, "__init__", "(self, our_role, address, priority, protocol_version=13)",
             "FastSansIO adds its linear-time parser"),
    Override(_SANSIO, "recv", "(self, *buffers)", "linear-time parsing (caproto: quadratic)"),
    Override(_SANSIO, "send", "(self, *commands, extra=None)",
             "no per-message debug formatting when debug logging is off"),
    Override(_SANSIO, "_process_command", "(self, role, command)",
             "steady-state transitions without caproto's state machine pass (speed)"),
    Override(_BROADCASTER, "recv", "(self, byteslike, address)",
             "remember the search datagram's sequence number"),
    Override(_BROADCASTER, "send", "(self, *commands)",
             "echo the client's sequence number (caproto: always 1; libca then paces)"),
    Override(_CIRCUIT, "__init__", "(self, circuit, client, context, *, loop=None)",
             "the circuit takes its limits and access policy"),
    Override(_CIRCUIT, "run", "(self)", "watch the circuit's loops"),
    Override(_CIRCUIT, "_start_write_task", "(self, handle_write)", "watch each put task"),
    Override(_CIRCUIT, "_on_disconnect", "(self)",
             "clear the backlog and cancel the loops (caproto left one waiting)"),
    Override(_CIRCUIT, "_send_buffers", "(self, *buffers)",
             "write large arrays piecewise instead of joining them into one copy"),
    Override(_CIRCUIT, "_wake_new_command", "(self)", "no command queue to wake"),
    Override(_CIRCUIT, "command_queue_loop", "(self)",
             "commands are answered by the reading task, in batches"),
    Override(_COMMON, "recv", "(self)", "64 KiB reads, answered in one write"),
    Override(_COMMON, "_command_queue_iteration", "(self, command)",
             "accept TCP name-server clients; close the circuit on a protocol error"),
    Override(_COMMON, "_process_command", "(self, command)",
             "limits, access rules, refused puts answered as rsrv does"),
    Override(_COMMON, "_cull_subscriptions", "(self, db_entry, func)",
             "podioc's removal (subscriptions.py) and drop the waiting updates"),
    Override(_COMMON, "_get_db_entry_from_command", "(self, command)",
             "called: the channel and ChannelData a request names"),
    Override(_COMMON, "subscription_queue_loop", "(self)",
             "bounded, batched monitor updates; one bad batch never ends the loop"),
    Override(_CONTEXT, "__init__", "(self, pvdb, interfaces=None, *, loop=None)",
             "podioc's queue, discovery, limits and access policy"),
    Override(_CONTEXT, "run", "(self, *, log_pv_names=False, startup_hook=None)",
             "also runs the resync and liveness (echo) loops"),
    Override(_COMMON_CONTEXT, "tcp_handler", "(self, client, addr)",
             "client cap (closing an idle client to make room), TCP_NODELAY, keepalive, "
             "podioc's circuit"),
    Override(_CONTEXT, "_create_broadcaster_transport", "(self, interface)",
             "search sockets that know each datagram's destination"),
    Override(_CONTEXT, "broadcaster_receive_loop", "(self)",
             "searches are answered from the sockets' reader callbacks"),
    Override(_COMMON_CONTEXT, "broadcast_beacon_loop", "(self)",
             "beacons to each interface's broadcast address (caproto: 255.255.255.255)"),
    Override(_COMMON_CONTEXT, "_subscription_queue_iteration",
             "(self, sub_specs, metadata, values, flags, sub)",
             "route updates to bounded backlogs; one bad update never ends the loop"),
    Override(_COMMON_CONTEXT, "circuit_disconnected", "(self, circuit)", "called"),
    Override(_DATA, "write_from_dbr", "(self, data, data_type, metadata, *, flags=0)",
             "a client's put goes to the model's validation; returns the value stored"),
    Override(_DATA, "publish", "(self, flags)", "called: post the model's change"),
    Override(_DATA, "_read", "(self, data_type)",
             "DBR types answered as EPICS base does (dbr.py); monitors use it too"),
    Override(_DATA, "calculate_length", "(self, value)",
             "CLASS_NAME/STSACK answers count 1 element on DBR_CHAR channels"),
    Override(_DATA, "subscribe", "(self, queue, sub_spec, sub)",
             "called: resend the newest value to a resynced subscription"),
    Override(_DATA, "auth_write", "(self, hostname, username, data, data_type, metadata, "
             "*, flags=0, user_address=None)",
             "called: a client's put; returns what write_from_dbr returns (the put log's "
             "new value)"),
    Override(_DATA, "check_access", "(self, hostname, username)",
             "rights from the spec (the rules use the peer address, see access.py)"),
)

ATTRIBUTES = (
    Attribute("sansio", "_ioids", "count a client's outstanding requests (limit)"),
    Attribute("sansio", "event_add_commands", "live subscriptions; the fast path's state; "
              "hotlane.py records a wire.Hot there (caproto reads .sid, .data_type, "
              ".data_count of its entries)"),
    Attribute("sansio", "event_cancel_commands", "the fast path's state"),
    Attribute("sansio", "channels_sid", "the fast path's state"),
    Attribute("sansio", "channels", "count a client's channels (limit, budget); forget "
              "channels whose creation failed (caproto keeps them)"),
    Attribute("sansio", "states", "the fast path's state"),
    Attribute("circuit", "tasks", "create the circuit's tasks as caproto does"),
    Attribute("circuit", "events_on", "events on/off"),
    Attribute("circuit", "subscriptions", "is a subscription still live"),
    Attribute("circuit", "subscriptions_to_resend", "events off: resend the newest later"),
    Attribute("circuit", "_sub_task", "caproto cancels it on disconnect"),
    Attribute("context", "circuits", "client count, rights re-sending, resync"),
    Attribute("context", "udp_socks", "podioc's search sockets replace caproto's"),
    Attribute("context", "beacon_socks", "caproto's beacon socket is closed"),
    Attribute("context", "broadcaster", "podioc's sequence-echoing broadcaster"),
    Attribute("context", "subscriptions", "route an update to every subscription"),
    Attribute("context", "last_dead_band", "caproto's dbnd filter state"),
    Attribute("context", "last_sync_edge_update", "caproto's sync filter state"),
    Attribute("context", "server_tasks", "the resync loop runs with the server"),
    Attribute("context", "ignore_addresses", "caproto's search ignore list"),
    Attribute("context", "ca_server_port", "the search port"),
    Attribute("context", "environ", "beacon settings"),
    Attribute("context", "beacon_count", "beacon sequence number"),
    Attribute("context", "subscription_queue", "replaced by the coalescing queue"),
    Attribute("channel", "_data", "caproto's cache of the model's value"),
    Attribute("channel", "_queues", "is any CA monitor subscribed; register a subscription "
              "made in place (fastpath.py, hotlane.py)"),
    Attribute("channel", "_content", "caproto's conversions of the old value, dropped; a "
              "read or a new subscription's first value (fastpath.py, hotlane.py)"),
    Attribute("channel", "max_subscription_backlog", "bounds a subscription's backlog"),
    Attribute("alarm", "_data", "caproto's cache of the model's alarm"),
    Attribute("update", "sub_specs", "SubscriptionUpdate fields: coalescing key"),
    Attribute("update", "flags", "SubscriptionUpdate fields: merged when coalescing"),
    Attribute("update", "sub", "SubscriptionUpdate fields: a new subscription's first value"),
)

SOURCE_TEXTS = (
    SourceText(f"{_CONTEXT}.run", "socket setup failed",
               "discovery.search filters this beacon error: podioc never uses that socket"),
    SourceText(f"{_DATA}.auth_write", "return (await self.write_from_dbr(",
               "puts.py logs the value write_from_dbr stored as the put's new value"),
    SourceText("caproto.asyncio.utils:_TransportWrapper.recv", "self.reader.read(nbytes)",
               "a circuit reads its client's bytes from the asyncio stream reader, whose "
               "feed_data inline.py wraps"),
    SourceText("asyncio.streams:StreamReaderProtocol.data_received", "reader.feed_data(data)",
               "(asyncio, not caproto) the bytes received reach inline.py's feed_data "
               "while the reading task waits"),
)
