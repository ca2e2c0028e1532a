"""Bounded resources on Channel Access: no client can make the server grow or stall.

- message size: a client whose next message declares a payload above the limit
  (``EPICS_CA_MAX_ARRAY_BYTES``, at least the largest PV) is disconnected
  before the payload is buffered;
- client cap: connections beyond ``PODIOC_MAX_CLIENTS`` are closed at once;
- per client at most :attr:`CircuitLimits.max_objects` channels, subscriptions
  and outstanding requests together (50,000, or 4 per PV if more): beyond, it
  is disconnected;
- per client at most :attr:`CircuitLimits.backlog_bytes` of unsent monitor
  updates (see :mod:`.backlog`);
- accepted sockets get TCP_NODELAY (caproto's do not: ~40 ms extra latency),
  and TCP keepalive with ``TCP_USER_TIMEOUT`` (:mod:`podioc.limits.deadpeer`),
  so a client that vanished is dropped within ``PODIOC_DEAD_PEER_TIMEOUT``;
- a circuit silent for ``EPICS_CA_CONN_TMO`` is sent an echo (see
  :meth:`.context.ServerContext.liveness_loop`): a dead peer then has unacknowledged
  data, and the user timeout closes it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...limits import deadpeer
from ...limits.resources import Limits, pv_bytes
from ...model.state import PV
from .backlog import CONGESTED_BYTES
from .wire import frame

#: Unsent subscription updates one client may have (raised to fit 2 of the largest PV).
CLIENT_BACKLOG_BYTES = 8 * 2**20
#: Channels + subscriptions + outstanding requests one client may hold (raised to 4 per PV).
CLIENT_OBJECTS = 50_000


@dataclass(frozen=True)
class CircuitLimits:
    """What one CA client may hold and send, computed once from the PV table."""

    max_clients: int = 1000
    max_payload: int = 1 << 62
    backlog_bytes: int = CLIENT_BACKLOG_BYTES
    max_objects: int = CLIENT_OBJECTS
    dead_peer_timeout: float = 60.0
    conn_tmo: float = 30.0

    @classmethod
    def for_pvs(cls, limits: Limits, pvs: Iterable[PV]) -> CircuitLimits:
        """The limits for a server of ``pvs`` (every PV, not only channels made so far)."""
        table = list(pvs)
        largest = max((pv_bytes(pv) for pv in table), default=0)
        return cls(max_clients=limits.max_clients,
                   max_payload=limits.ca_max_payload(table),
                   backlog_bytes=max(CLIENT_BACKLOG_BYTES, 2 * largest + 2 * CONGESTED_BYTES),
                   max_objects=max(CLIENT_OBJECTS, 4 * len(table)),
                   dead_peer_timeout=limits.dead_peer_timeout, conn_tmo=limits.ca_conn_tmo)


def oversized(pending: bytes | bytearray, limit: int) -> str:
    """Why an incomplete message still arriving is refused, or ''."""
    found = frame(pending)
    if found is not None and found.payload_size > limit:
        return (f"declares a {found.payload_size}-byte message (command {found.command}); "
                f"the limit is {limit} bytes (EPICS_CA_MAX_ARRAY_BYTES)")
    return ""


def too_large(command: Any, limit: int) -> str:
    """Why a complete message is refused for its size, or ''."""
    size = int(getattr(getattr(command, "header", None), "payload_size", 0) or 0)
    if size > limit:
        return (f"it sent a {size}-byte message ({type(command).__name__}); the limit is "
                f"{limit} bytes (EPICS_CA_MAX_ARRAY_BYTES)")
    return ""


def set_socket_options(client: Any, dead_peer_timeout: float) -> None:
    """TCP_NODELAY and keepalive on an accepted client, as rsrv does.

    caproto creates its listening socket with protocol 0, so asyncio skips it,
    and Nagle's algorithm then holds a monitor update that follows another
    reply until the client's delayed ACK (~40 ms). Keepalive and the user
    timeout drop a client that vanished (:mod:`podioc.limits.deadpeer`).
    """
    writer = getattr(client, "writer", None)
    sock = writer.get_extra_info("socket") if writer is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadpeer.apply(sock, dead_peer_timeout)


def unread_bytes(client: Any) -> int:
    """Bytes written to the client's socket buffer that it has not read yet."""
    try:
        return int(client.writer.transport.get_write_buffer_size())
    except Exception:
        return 0
