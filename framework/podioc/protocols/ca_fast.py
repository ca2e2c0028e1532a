"""The fast parts of podioc's Channel Access server, replacing slow parts of caproto's.

Measured with ``benchmarks/run.py`` (pyepics clients, loopback):

* **Search replies echo the client's datagram sequence number.** caproto answers
  every search datagram with a version header whose sequence number is always 1
  (``VersionResponseHeader`` hard-codes it) while flagging it as valid. libca
  (``searchTimer``) counts only answers whose sequence number belongs to its
  latest batch: it answers "all replied" by sending the next batch at once and
  doubling its frames per batch. With caproto every answer after the first
  batch looks stale, so libca falls back to its timer and sends one datagram
  (~30 names) per round-trip estimate (~27 ms): ~1,100 channels/s however idle
  the server is. :class:`SequenceEchoBroadcaster` fixes it.
* **Commands that arrive together are answered together**, by the task that
  read them: one write for a batch of replies (caproto hands each command to
  a second task, which writes and drains once per command), 64 KiB reads
  parsed in linear time (caproto copies its buffer after every command), no
  per-command condition notify, no ``asyncio.wait_for`` task per read when
  no write is in progress, and no state-machine pass for messages that
  cannot change a state (:class:`FastSansIO`).
* **Monitors never queue stale news**: channel updates waiting for the server
  coalesce per channel and data type, each subscription keeps at most
  :data:`SUBSCRIPTION_BACKLOG` updates (the newest), a circuit sends everything
  pending in one write, and nothing awaits while iterating over subscriptions,
  so a client that disconnects mid-flood cannot break the loop ("deque mutated
  during iteration") and a slow client never blocks the others.
* **A large array is copied once** (to big-endian wire order) on its way to a
  monitor: caproto converts it again when building the message, joins all
  buffers into one, and the transport buffers what the socket did not take.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import struct
from typing import Any

import caproto as ca
import numpy as np
from caproto import apply_arr_filter
from caproto._backend import backend
from caproto._commands import Commands, ensure_eca_value, pad_buffers, parse_metadata
from caproto._dbr import ChannelType, native_type
from caproto._headers import EventAddResponseHeader, ExtendedMessageHeader, MessageHeader
from caproto._utils import apply_deadband_filter
from caproto.asyncio.server import AsyncioEvent
from caproto.asyncio.server import Context as _Context
from caproto.asyncio.server import VirtualCircuit as _VirtualCircuit
from caproto.server.common import DisconnectedCircuit, LoopExit, host_endian

from ..util.tasks import watch

log = logging.getLogger(__name__)

#: Updates one subscription may have waiting to be sent; older ones are dropped
#: (caproto keeps 1,000). Enough for a 1 ms batch at tens of kHz, small enough
#: that a client never receives more than this many stale values.
SUBSCRIPTION_BACKLOG = 64
#: ... and at most this many bytes of them (a large array keeps only the newest).
SUBSCRIPTION_BACKLOG_BYTES = 1 << 20
#: While monitor updates keep coming, a circuit writes them at most this often (s).
BATCH_WINDOW = 0.001
#: Replies collected from one read before they are written.
MAX_BATCH = 1024
READ_SIZE = 65536
#: Messages up to this size are joined into one write; larger ones are written
#: piecewise (in :data:`WRITE_CHUNK` slices) instead of being copied whole.
JOIN_LIMIT = 1 << 16
WRITE_CHUNK = 1 << 18
#: Arrays with at least this many bytes go on the wire without a second copy.
ZERO_COPY_BYTES = 1 << 12
_ECA_NORMAL = ensure_eca_value(1)
_HEAD = struct.Struct(">HHHH")


def parse(circuit: Any, data: bytes) -> list[Any]:
    """The commands in ``data`` (plus what ``circuit`` kept from before), in linear time.

    caproto's ``VirtualCircuit.recv`` copies the rest of its buffer after every
    command (``data[total_size:]``), which is quadratic in the bytes received at
    once: most of the server's time when thousands of requests arrive together.
    Here the buffer is read at increasing offsets and only the incomplete tail
    is kept. Payloads stay zero-copy views of the buffer, which is never resized.
    """
    if not data:
        return [ca.DISCONNECTED]
    buffer = circuit._data + data if circuit._data else bytearray(data)
    view = memoryview(buffer)
    classes = Commands[circuit.their_role]
    commands = []
    offset, end = 0, len(buffer)
    while offset + 16 <= end:
        _, size, _, count = _HEAD.unpack_from(buffer, offset)
        if size == 0xFFFF and count == 0:
            if offset + 24 > end:
                break
            header = ExtendedMessageHeader.from_buffer_copy(buffer, offset)
        else:
            header = MessageHeader.from_buffer_copy(buffer, offset)
        start = offset + ctypes.sizeof(header)
        stop = start + header.payload_size
        if stop > end:
            break
        try:
            cls = classes[header.command]
        except KeyError:
            raise ca.RemoteProtocolError(
                f"Packet with bad command ID {hex(header.command)} was received") from None
        commands.append(cls.from_wire(header, view[start:stop]))
        offset = stop
    circuit._data = bytearray(view[offset:]) if offset < end else bytearray()
    return commands


_BY_SID = (ca.ReadNotifyRequest, ca.ReadRequest, ca.WriteNotifyRequest, ca.WriteRequest,
           ca.EventAddRequest)
_BY_IOID = (ca.ReadNotifyResponse, ca.ReadResponse, ca.WriteNotifyResponse)


class FastSansIO(ca.VirtualCircuit):  # type: ignore[misc]
    """caproto's (sans-I/O) server circuit state, with the steady state made cheap.

    caproto runs every message through each channel's state machine for both
    roles (~25 enum hashes and dict lookups, ~20 us), and measures every sent
    message for a debug log line even when debug logging is off. Here the
    messages of a connected channel (reads, writes, monitors: CONNECTED stays
    CONNECTED) and the three messages that create a channel take their known
    transitions (caproto's table, ``_state.py``) and exactly caproto's
    bookkeeping (``_ioids``, ``event_add_commands``, ``channels_sid``, the same
    checks) directly. Every other message, and any channel or circuit in
    another state, takes caproto's full path, errors included.
    """

    def recv(self, *buffers: Any) -> tuple[list[Any], int]:
        return parse(self, b"".join(buffers)), 0

    def send(self, *commands: Any, extra: Any = None) -> list[Any]:
        if self.log.isEnabledFor(logging.DEBUG):
            return super().send(*commands, extra=extra)  # type: ignore[no-any-return]
        buffers: list[Any] = []
        for command in commands:
            self._process_command(self.our_role, command)
            buffers.append(memoryview(command.header))
            buffers.extend(command.buffers)
        return buffers

    def _steady(self, chan: Any) -> bool:
        states = chan.states.states
        return bool(states[ca.SERVER] is ca.CONNECTED and states[ca.CLIENT] is ca.CONNECTED
                    and self.states.states[ca.SERVER] is ca.CONNECTED)

    def _creating(self, chan: Any) -> bool:
        states = chan.states.states
        return bool(states[ca.SERVER] is ca.SEND_CREATE_CHAN_RESPONSE
                    and states[ca.CLIENT] is ca.AWAIT_CREATE_CHAN_RESPONSE
                    and self.states.states[ca.SERVER] is ca.CONNECTED)

    @staticmethod
    def _move(chan: Any, command: Any, client_state: Any, server_state: Any) -> None:
        """caproto's transition of both roles, with its state_changed callbacks."""
        states = chan.states.states
        old = states[ca.CLIENT], states[ca.SERVER]
        states[ca.CLIENT], states[ca.SERVER] = client_state, server_state
        for role, before, after in ((ca.CLIENT, old[0], client_state),
                                    (ca.SERVER, old[1], server_state)):
            if before is not after:
                chan.state_changed(role, before, after, command)

    def _process_command(self, role: Any, command: Any) -> None:
        kind = type(command)
        if kind is ca.CreateChanRequest and role is self.their_role and (
                self.states.states[ca.SERVER] is ca.CONNECTED):
            chan = self.channels.get(command.cid)
            if chan is None:
                chan = ca.ServerChannel(command.name, self, command.cid)  # registers itself
            states = chan.states.states
            if states[ca.CLIENT] is ca.SEND_CREATE_CHAN_REQUEST and states[ca.SERVER] is ca.IDLE:
                self._move(chan, command, ca.AWAIT_CREATE_CHAN_RESPONSE,
                           ca.SEND_CREATE_CHAN_RESPONSE)
                return
        elif kind is ca.AccessRightsResponse and role is self.our_role:
            chan = self.channels.get(command.cid)
            if chan is not None and self._creating(chan):
                chan.access_rights = command.access_rights
                return
        elif kind is ca.CreateChanResponse and role is self.our_role:
            chan = self.channels.get(command.cid)
            if chan is not None and self._creating(chan):
                chan.native_data_type = command.data_type
                chan.native_data_count = command.data_count
                self._move(chan, command, ca.CONNECTED, ca.CONNECTED)
                chan.sid = command.sid
                chan.protocol_version = self.protocol_version
                self.channels_sid[chan.sid] = chan
                return
        elif kind in _BY_SID and role is self.their_role:
            chan = self.channels_sid.get(command.sid)
            if chan is not None and self._steady(chan):
                if kind is ca.EventAddRequest:
                    self.event_add_commands[command.subscriptionid] = command
                elif kind is not ca.WriteRequest:
                    self._ioids[command.ioid] = chan
                return
        elif kind in _BY_IOID and role is self.our_role:
            chan = self._ioids.get(command.ioid)
            if chan is not None and self._steady(chan):
                del self._ioids[command.ioid]
                return
        elif kind is ca.EventAddResponse and role is self.our_role:
            subscription = command.subscriptionid
            added = self.event_add_commands.get(subscription)
            if (added is not None and subscription not in self.event_cancel_commands
                    and added.data_type == command.data_type
                    and added.data_count in (0, command.data_count)):
                chan = self.channels_sid.get(added.sid)
                if chan is not None and self._steady(chan):
                    return
        super()._process_command(role, command)


def wire_view(values: Any, data_type: Any) -> memoryview | None:
    """``values`` as bytes on the wire without a copy, when it already is a large,
    contiguous array of the wire's (big-endian) type, as caproto's conversion
    for a read or an update returns it; else None."""
    if not (isinstance(values, np.ndarray) and values.nbytes >= ZERO_COPY_BYTES
            and values.flags.c_contiguous):
        return None
    if values.dtype != backend.type_map.get(native_type(ChannelType(data_type))):
        return None
    return memoryview(values).cast("B")  # type: ignore[arg-type]


def event_add_response(values: Any, metadata: Any, data_type: Any, data_count: int,
                       subscriptionid: int) -> Any:
    """caproto's ``EventAddResponse`` (status normal). caproto converts the data
    for the wire once more when it builds the message (``astype`` always
    copies); for a large array already in wire form this one uses it as is."""
    view = wire_view(values, data_type)
    if view is None:
        return ca.EventAddResponse(values, data_type, data_count, 1, subscriptionid,
                                   metadata=metadata)
    md_payload = parse_metadata(metadata, ChannelType(data_type))
    size, pad = pad_buffers(md_payload, view)
    header = EventAddResponseHeader(size, data_type, data_count, _ECA_NORMAL, subscriptionid)
    buffers = (md_payload, view, pad) if pad else (md_payload, view)
    return ca.EventAddResponse.from_components(header, *buffers)


class SequenceEchoBroadcaster(ca.Broadcaster):  # type: ignore[misc]
    """caproto's UDP protocol state, answering with the sequence number asked with.

    A search datagram from libca starts with a version request whose
    ``parameter1`` is the datagram's sequence number (``data_type`` 1 = valid).
    The version header of the answer carries the same two fields back. Callers
    receive, process and answer one datagram without awaiting in between (as
    podioc's discovery and :class:`FastContext` do).
    """

    def __init__(self, our_role: Any = ca.SERVER) -> None:
        super().__init__(our_role)
        self._asked: tuple[int, int] | None = None

    def recv(self, byteslike: Any, address: Any) -> list[Any]:
        commands: list[Any] = super().recv(byteslike, address)
        self._asked = next(((c.header.data_type, c.header.parameter1) for c in commands
                            if isinstance(c, ca.VersionRequest)), None)
        return commands

    def send(self, *commands: Any) -> Any:
        if self._asked is not None and commands and isinstance(commands[0],
                                                               ca.VersionResponse):
            header = commands[0].header
            header.data_type, header.parameter1 = self._asked
        return super().send(*commands)


class _FastEvent(AsyncioEvent):  # type: ignore[misc]
    """caproto's event with a timeout, without a task when it is already set."""

    async def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        return bool(await super().wait(timeout))


class CoalescingQueue:
    """The context's queue of channel updates: while an update of a channel (for
    one data type) waits, a newer one replaces it and moves to the back.

    Updates for one new subscription (its first value) are always kept. Used by
    caproto's ``ChannelData.publish``/``subscribe`` through ``put``.
    """

    def __init__(self) -> None:
        self._items: dict[Any, Any] = {}
        self._ready = asyncio.Event()
        self._serial = 0

    def put_nowait(self, update: Any) -> None:
        if update.sub is None:
            key: Any = update.sub_specs
            old = self._items.pop(key, None)
            if old is not None:
                update = update._replace(flags=update.flags | old.flags)
        else:
            self._serial += 1
            key = ("first", self._serial)
        self._items[key] = update
        self._ready.set()

    async def put(self, update: Any) -> None:
        self.put_nowait(update)

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        key = next(iter(self._items))
        return self._items.pop(key)


class FastCircuit(_VirtualCircuit):  # type: ignore[misc]
    """One client connection: batched replies and a bounded, batched monitor path."""

    def __init__(self, circuit: Any, client: Any, context: Any) -> None:
        super().__init__(circuit, client, context)
        self.write_event = _FastEvent()
        #: subscription id -> (SubscriptionSpec, Subscription, updates waiting)
        self._pending: dict[int, tuple[Any, Any, collections.deque[Any]]] = {}
        self._updates_ready = asyncio.Event()

    async def _send_buffers(self, *buffers: Any) -> None:
        """Write small messages joined (one write); a large buffer (a big array)
        piecewise with back-pressure, never copied whole (caproto joins all
        buffers into one new bytes object first)."""
        views = [memoryview(b).cast("B") for b in buffers]
        if sum(v.nbytes for v in views) <= JOIN_LIMIT:
            await self.client.send(b"".join(views))
            return
        writer = self.client.writer
        try:
            async with self.client.send_lock:
                small: list[memoryview] = []
                for view in views:
                    if view.nbytes <= JOIN_LIMIT:
                        small.append(view)
                        continue
                    if small:
                        writer.write(b"".join(small))
                        small = []
                    for start in range(0, view.nbytes, WRITE_CHUNK):
                        writer.write(view[start:start + WRITE_CHUNK])
                        await writer.drain()
                if small:
                    writer.write(b"".join(small))
                await writer.drain()
        except OSError as exc:
            raise ca.CaprotoNetworkError(f"Failed to send: {exc}") from exc

    async def run(self) -> None:
        """Start the circuit's loops (as caproto does); a loop that dies is logged
        when it does, not when the client leaves."""
        who = "CA client {}:{}".format(*self.circuit.address[:2])
        watch(self.tasks.create(self.command_queue_loop()), f"command loop of {who}")
        self._sub_task = watch(self.tasks.create(self.subscription_queue_loop()),
                               f"monitor loop of {who}")

    async def _start_write_task(self, handle_write: Any) -> None:
        watch(self.tasks.create(handle_write()),
              "put from CA client {}:{}".format(*self.circuit.address[:2]))

    # -- commands --------------------------------------------------------------
    async def recv(self) -> None:
        """Read up to 64 KiB (caproto: 4 KiB), process every command in it and
        write all replies at once.

        caproto queues each command for a second task that answers it and writes
        and drains once per command. Here the reading task answers directly: one
        task switch less per request, one write per batch, and TCP back-pressure
        for free (nothing is read while a batch is processed).
        """
        try:
            data = await self.client.recv(READ_SIZE)
        except OSError:
            data = b""
        try:
            await self._answer(parse(self.circuit, data))
        except (DisconnectedCircuit, LoopExit):
            await self._on_disconnect()
            self.circuit.disconnect()
            raise DisconnectedCircuit() from None

    async def _answer(self, commands: list[Any]) -> None:
        replies: list[Any] = []
        for command in commands:
            if replies and isinstance(command, ca.WriteRequest | ca.WriteNotifyRequest):
                await self.send(*replies)  # earlier answers go before the write's
                replies = []
            response = await self._command_queue_iteration(command)
            if response:
                replies.extend(response)
            if len(replies) >= MAX_BATCH:
                await self.send(*replies)
                replies = []
        if replies:
            await self.send(*replies)

    async def _wake_new_command(self) -> None:
        """Nothing waits on caproto's condition in the asyncio server."""

    async def command_queue_loop(self) -> None:
        """Commands are answered by :meth:`recv`; nothing is queued."""
        self.write_event.set()

    async def _process_command(self, command: Any) -> Any:
        response = await super()._process_command(command)
        if isinstance(command, ca.EventsOffRequest):
            self._park_pending()
        return response

    # -- monitors ----------------------------------------------------------------
    def queue_update(self, sub_spec: Any, sub: Any, command: Any) -> None:
        """Queue one EventAddResponse; the oldest is dropped beyond the backlog."""
        entry = self._pending.get(sub.subscriptionid)
        if entry is None:
            size = min(SUBSCRIPTION_BACKLOG, sub.db_entry.max_subscription_backlog,
                       SUBSCRIPTION_BACKLOG_BYTES // len(command))
            entry = (sub_spec, sub, collections.deque(maxlen=max(1, size)))
            self._pending[sub.subscriptionid] = entry
        entry[2].append(command)
        self._updates_ready.set()

    def _park_pending(self) -> None:
        """Events off: drop waiting updates, resend the newest when events are on."""
        for sub_spec, sub, _ in self._pending.values():
            resend = self.subscriptions_to_resend.setdefault(sub_spec, [])
            if sub not in resend:
                resend.append(sub)
        self._pending.clear()

    async def _cull_subscriptions(self, db_entry: Any, func: Any) -> Any:
        removed = await super()._cull_subscriptions(db_entry, func)
        for _, sub in removed:  # nothing of theirs may follow the cancel reply
            self._pending.pop(sub.subscriptionid, None)
        return removed

    async def subscription_queue_loop(self) -> None:
        """Send everything pending in one write: at once after a quiet spell, and
        at most once per :data:`BATCH_WINDOW` while updates keep coming (a write
        on loopback costs tens of microseconds; caproto instead lets its
        batching delay grow to a second under load)."""
        self.events_on.set()
        loop = asyncio.get_running_loop()
        last = -1.0
        try:
            while True:
                await self._updates_ready.wait()
                wait = last + BATCH_WINDOW - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._updates_ready.clear()
                pending, self._pending = self._pending, {}
                live = self.circuit.event_add_commands
                commands = [c for subid, (_, _, updates) in pending.items() if subid in live
                            for c in updates]
                if not commands:
                    continue
                last = loop.time()
                try:
                    await self.send(*commands)
                except (DisconnectedCircuit, asyncio.CancelledError, OSError,
                        ca.CaprotoNetworkError):
                    raise
                except Exception:  # one bad batch must not end every monitor
                    log.exception("CA client %s:%d: dropped %d monitor updates that could "
                                  "not be sent", *self.circuit.address[:2], len(commands))
        except (DisconnectedCircuit, asyncio.CancelledError, OSError, ca.CaprotoNetworkError):
            pass  # the reading side sees the disconnection and cleans up

    async def _on_disconnect(self) -> None:
        self._pending.clear()
        await super()._on_disconnect()


class FastContext(_Context):  # type: ignore[misc]
    """caproto's asyncio server context with the fast parts above."""

    CircuitClass = FastCircuit

    def __init__(self, pvdb: Any, interfaces: Any = None) -> None:
        super().__init__(pvdb, interfaces)
        # Searches are received and answered by ca_discovery.Discovery (see
        # ca_server.Context); it answers through this broadcaster.
        self.broadcaster = SequenceEchoBroadcaster(ca.SERVER)
        self.subscription_queue = CoalescingQueue()

    async def tcp_handler(self, client: Any, addr: Any) -> None:
        """caproto's handler for a new TCP client, with :class:`FastSansIO` state."""
        circuit = self.CircuitClass(FastSansIO(ca.SERVER, addr, None), client, self)
        self.circuits.add(circuit)
        self.log.info("Connected to new client at %s:%d (total: %d).", *addr,
                      len(self.circuits))
        await circuit.run()
        while True:
            try:
                await circuit.recv()
            except DisconnectedCircuit:
                await self.circuit_disconnected(circuit)
                break
            except Exception:
                self.log.exception("Client disconnected in unexpected way")
                await circuit._on_disconnect()
                await self.circuit_disconnected(circuit)
                break
        self.log.info("Disconnected from client at %s:%d (total: %d).", *addr,
                      len(self.circuits))

    async def _subscription_queue_iteration(self, sub_specs: Any, metadata: Any, values: Any,
                                            flags: int, sub: Any) -> None:
        if sub is not None:
            targets = [(sub_specs[0], sub)]
        else:  # a snapshot: the deques may change while this runs
            targets = [(spec, s) for spec in sub_specs for s in tuple(self.subscriptions[spec])]
        for spec, target in targets:
            await self._subscription_queue_send(spec, target, metadata=metadata,
                                                values=values, flags=flags)

    async def _subscription_queue_send(self, sub_spec: Any, sub: Any, metadata: Any,
                                       values: Any, flags: int) -> None:
        """caproto's per-subscription filtering, then :meth:`FastCircuit.queue_update`
        instead of a queue that can block (and so stall every other client)."""
        circuit = sub.circuit
        if not circuit.connected:
            return
        if sub not in circuit.subscriptions.get(sub_spec, ()):
            # Cancelled (or its channel cleared) while this update waited in the
            # queue: sending it would break CA's rule that nothing of a
            # subscription follows its cancel reply (caproto's send raises).
            return
        if not circuit.events_on.is_set():
            resend = circuit.subscriptions_to_resend.setdefault(sub_spec, [])
            if sub not in resend:
                resend.append(sub)
            return
        values = apply_arr_filter(sub_spec.channel_filter.arr, values)
        data_count = sub.data_count or len(values)
        if data_count != len(values):
            values = values[:data_count]
        command = event_add_response(values, metadata, sub.data_type, data_count,
                                     sub.subscriptionid)
        if sub.channel_filter.dbnd is not None:
            tracked = apply_deadband_filter(previous_value=self.last_dead_band.get(sub),
                                            new_value=values, sub=sub, flags=flags,
                                            host_endian=host_endian)
            if tracked is None:
                return
            self.last_dead_band[sub] = tracked
        sync = sub.channel_filter.sync
        if sync is not None:
            edges = self.last_sync_edge_update[sub][sync.s]
            if edges.get(sync.m) == command:
                return
            edges[sync.m] = command
        circuit.queue_update(sub_spec, sub, command)
