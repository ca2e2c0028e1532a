"""Bounded resources for the caproto server: no client can make it grow or stall.

- message size: a client whose next message declares a payload above the limit
  (``EPICS_CA_MAX_ARRAY_BYTES``, at least the largest PV) is disconnected
  before the payload is buffered;
- client cap: connections beyond ``PODIOC_MAX_CLIENTS`` are closed at once;
- per client at most ``CLIENT_OBJECTS`` channels, subscriptions and
  outstanding requests together (caproto keeps an entry per subscription even
  after its channel is cleared, and per failed read): beyond, it is disconnected;
- slow subscribers: :mod:`.ca_fast` never lets the shared update loop wait for
  a client and keeps a few pending updates per subscription (newest win, ~1 MiB
  at most); here a client whose socket is backed up keeps only the newest
  update per subscription, and a client's unsent updates (queued and in the
  socket buffer) stay below ``CLIENT_BACKLOG_BYTES``: beyond it the waiting
  updates of the subscriptions sent most recently are dropped first (they take
  turns; none starves), and each dropped one gets its newest value once the
  client reads again (:func:`resync_loop`);
- accepted sockets get TCP_NODELAY (caproto's do not: ~40 ms extra latency);
- a protocol error that caproto cannot recover from closes the circuit
  (caproto left it open with its command loop dead); a circuit that ends in
  any way has its loops cancelled, so nothing it held stays in memory;
- log lines clients can trigger are rate-limited (:mod:`podioc.access.ratelimit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import caproto as ca
from caproto.server.common import DisconnectedCircuit, LoopExit

from ..limits import ratelimit
from ..limits.resources import Limits, pv_bytes

log = logging.getLogger(__name__)

#: Unsent subscription updates one client may have (raised to fit 2 of the largest PV).
CLIENT_BACKLOG_BYTES = 8 * 2**20
#: A socket send buffer above this means the client is not keeping up.
CONGESTED_BYTES = 256 * 2**10
RESYNC_PERIOD = 0.5
#: Channels + subscriptions + outstanding requests one client may hold (raised to 4 per PV).
CLIENT_OBJECTS = 50_000


def declared_payload(buffer: bytes | bytearray | memoryview) -> int:
    """Payload size declared by the CA header at the start of ``buffer`` (-1: not yet known)."""
    if len(buffer) < 16:
        return -1
    size, _, count = struct.unpack_from(">HHH", buffer, 2)
    if size == 0xFFFF and count == 0:
        if len(buffer) < 24:
            return -1
        return int(struct.unpack_from(">I", buffer, 16)[0])
    return int(size)


def oversized(circuit: Any, limit: int) -> str:
    """Why the client's pending (incomplete) message is refused, or ''."""
    pending = circuit.circuit._data
    size = declared_payload(pending)
    if size > limit:
        command = struct.unpack_from(">H", pending, 0)[0]
        return (f"declares a {size}-byte message (command {command}); the limit is {limit} "
                "bytes (EPICS_CA_MAX_ARRAY_BYTES)")
    return ""


def refuse_client(context: Any, client: Any, addr: tuple[str, int]) -> bool:
    """True (and the socket closed) when the context already serves the maximum.

    An accepted client's socket gets TCP_NODELAY, as rsrv's: caproto creates its
    listening socket with protocol 0, so asyncio skips it, and Nagle's algorithm
    then holds a monitor update that follows another reply until the client's
    delayed ACK (~40 ms).
    """
    sock = client.writer.get_extra_info("socket") if hasattr(client, "writer") else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    limits: Limits = getattr(context, "limits", Limits())
    if len(context.circuits) < limits.max_clients:
        return False
    log.warning("CA client limit reached (PODIOC_MAX_CLIENTS=%d): refusing the connection "
                "from %s:%d", limits.max_clients, addr[0], addr[1])
    with contextlib.suppress(Exception):  # already gone
        client.close()
    return True


def install(context: Any, limits: Limits, pvs: Any = ()) -> None:
    """Apply ``limits`` to a caproto server Context (before it runs)."""
    ratelimit.install()
    pvs = list(pvs)
    context.limits = limits
    context.ca_max_payload = limits.ca_max_payload(pvs)
    largest = max((pv_bytes(pv) for pv in pvs), default=0)
    context.ca_client_backlog = max(CLIENT_BACKLOG_BYTES, 2 * largest + 2 * CONGESTED_BYTES)
    context.ca_client_objects = max(CLIENT_OBJECTS, 4 * len(context.pvdb))
    context.server_tasks.create(resync_loop(context))


_COUNTED = (ca.CreateChanRequest, ca.EventAddRequest, ca.ReadNotifyRequest,
            ca.WriteNotifyRequest)


def intercept(circuit: Any, command: Any) -> list[Any] | None:
    """Close the circuit ([] = no reply) when a message is too large or its client
    holds too much; else None.

    Large messages read whole in one go are caught here; :func:`oversized`
    catches those still arriving.
    """
    state = circuit.circuit
    size = int(getattr(getattr(command, "header", None), "payload_size", 0) or 0)
    limit = getattr(circuit.context, "ca_max_payload", 1 << 62)
    if size > limit:
        return _close(circuit, f"it sent a {size}-byte message ({type(command).__name__}); "
                      f"the limit is {limit} bytes (EPICS_CA_MAX_ARRAY_BYTES)")
    if not isinstance(command, _COUNTED):
        return None
    held = len(state.channels) + len(state.event_add_commands) + len(state._ioids)
    limit = getattr(circuit.context, "ca_client_objects", CLIENT_OBJECTS)
    if held <= limit:
        return None
    return _close(circuit, f"it holds {held} channels, subscriptions and requests "
                  f"(limit {limit})")


def _close(circuit: Any, reason: str) -> list[Any]:
    log.warning("disconnecting CA client %s:%d: %s", *circuit.circuit.address[:2], reason)
    with contextlib.suppress(Exception):
        circuit.client.close()  # the reading side sees the end and cleans up
    return []


_LOOPS = {"command_queue_loop", "subscription_queue_loop"}


def cancel_tasks(circuit: Any) -> None:
    """Cancel the loops of a circuit that has ended, except the caller's own.

    Puts in progress are left to finish (a put is never cut half-way).
    """
    current = asyncio.current_task()
    for task in list(circuit.tasks.tasks):
        name = getattr(task.get_coro(), "__name__", "")
        if task is not current and name in _LOOPS:
            task.cancel()


async def end_on_error(circuit: Any, step: Any) -> Any:
    """Await one command's processing; an unrecoverable error closes the circuit.

    caproto ends its command loop on such errors (and on a KeyError in its own
    error handling) but leaves the connection open, reading into a queue
    nobody empties.
    """
    try:
        return await step
    except (DisconnectedCircuit, asyncio.CancelledError):
        raise
    except Exception as exc:  # LoopExit, or a bug in caproto's error path
        reason = str(exc) if isinstance(exc, LoopExit) else f"{type(exc).__name__}: {exc}"
        log.warning("closing the CA circuit of %s:%d after a protocol error: %s",
                    *circuit.circuit.address[:2], reason)
        raise DisconnectedCircuit(reason) from None


# -- slow subscribers ---------------------------------------------------------------
@dataclass
class Backlog:
    """A circuit's unsent-update accounting (attached as ``circuit._podioc_backlog``)."""

    pending: Any = None  # the ca_fast ``_pending`` dict the byte count refers to
    nbytes: int = 0
    stale: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    dropped: int = 0
    turn: int = 0  # counts batches taken for sending
    served: dict[int, int] = field(default_factory=dict)  # subscription id -> its last batch

    def admit(self, subid: int, size: int) -> bool:
        self.stale.pop(subid, None)
        self.nbytes += size
        return True

    def taken(self, pending: Any) -> None:
        """ca_fast took ``self.pending`` for sending and started ``pending`` afresh."""
        if self.pending is not None and self.pending:
            self.turn += 1
            for subid in self.pending:
                self.served[subid] = self.turn
        self.pending = pending
        self.nbytes = sum(len(c) for *_, updates in pending.values() for c in updates)


def _backlog(circuit: Any) -> Backlog:
    backlog: Backlog | None = getattr(circuit, "_podioc_backlog", None)
    if backlog is None:
        backlog = Backlog()
        circuit._podioc_backlog = backlog
    return backlog


def socket_backlog(circuit: Any) -> int:
    """Bytes written to the client's socket buffer that it has not read yet."""
    try:
        return int(circuit.client.writer.transport.get_write_buffer_size())
    except Exception:
        return 0


def admit_update(circuit: Any, sub_spec: Any, sub: Any, command: Any) -> bool:
    """Account for one update about to be queued for a client; False: drop it.

    Called before ca_fast's ``queue_update``; mirrors its per-subscription deque.
    """
    backlog = _backlog(circuit)
    pending = circuit._pending
    if backlog.pending is not pending:  # ca_fast took the last batch: count afresh
        backlog.taken(pending)
    size = len(command)
    queued = socket_backlog(circuit)
    entry = pending.get(sub.subscriptionid)
    if entry is not None:
        updates = entry[2]
        if queued > CONGESTED_BYTES:  # not keeping up: only the newest update waits
            backlog.nbytes -= sum(len(c) for c in updates)
            updates.clear()
        elif updates.maxlen is not None and len(updates) == updates.maxlen:
            backlog.nbytes -= len(updates[0])  # ca_fast drops the oldest
    limit = getattr(circuit.context, "ca_client_backlog", CLIENT_BACKLOG_BYTES)
    over = queued + backlog.nbytes + size - limit
    if over <= 0:
        return backlog.admit(sub.subscriptionid, size)
    if not backlog.dropped:
        log.warning("CA client %s:%d is not reading its socket: dropping updates until "
                    "it does (it then gets the newest values)", *circuit.circuit.address[:2])
    # Make room by dropping the waiting updates of subscriptions sent more recently
    # than this one (each gets its newest value later): under overload the
    # subscriptions take turns instead of some starving the others.
    mine = backlog.served.get(sub.subscriptionid, -1)
    victims = sorted((subid for subid in pending
                      if subid != sub.subscriptionid and backlog.served.get(subid, -1) > mine),
                     key=lambda subid: -backlog.served.get(subid, -1))
    for subid in victims:
        if over <= 0:
            break
        other_spec, other_sub, updates = pending.pop(subid)
        freed = sum(len(c) for c in updates)
        backlog.nbytes -= freed
        over -= freed
        backlog.stale[subid] = (other_spec, other_sub)
        backlog.dropped += 1
    if over > 0:  # no room even so: this one waits its turn
        backlog.dropped += 1
        backlog.stale[sub.subscriptionid] = (sub_spec, sub)
        return False
    return backlog.admit(sub.subscriptionid, size)


async def resync_loop(context: Any) -> None:
    """Send the newest value of every subscription whose updates were dropped,
    once its client reads again."""
    while True:
        await asyncio.sleep(RESYNC_PERIOD)
        for circuit in list(context.circuits):
            backlog: Backlog | None = getattr(circuit, "_podioc_backlog", None)
            if backlog is None:
                continue
            if len(backlog.served) > 2 * len(circuit.subscriptions) + 100:  # forget old ones
                live = {sub.subscriptionid for subs in circuit.subscriptions.values()
                        for sub in subs}
                backlog.served = {k: v for k, v in backlog.served.items() if k in live}
            if (not backlog.stale or not circuit.connected
                    or socket_backlog(circuit) > CONGESTED_BYTES):
                continue
            stale, backlog.stale = backlog.stale, {}
            backlog.dropped = 0
            for sub_spec, sub in stale.values():
                if sub in circuit.subscriptions.get(sub_spec, ()):
                    try:
                        await sub.db_entry.subscribe(context.subscription_queue, sub_spec, sub)
                    except Exception:
                        log.exception("re-sending %s failed", sub_spec.db_entry)
