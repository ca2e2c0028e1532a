"""One Channel Access client connection (a caproto asyncio ``VirtualCircuit``).

Where podioc deliberately differs from caproto, and why:

* commands that arrive together are answered together by the task that read
  them: one write per batch, 64 KiB reads parsed in linear time
  (:mod:`.wire`), no second task and queue per command (speed);
* monitor updates wait in a bounded, byte-counted :class:`.backlog.Backlog`
  and a circuit sends everything pending in one write, at most once per
  :data:`BATCH_WINDOW` (caproto's queue can block every other client);
* an update of a subscription cancelled meanwhile is dropped, and a batch
  that fails to send is logged without ending the loop (caproto's loop died:
  every monitor of the connection stopped);
* a protocol error caproto cannot recover from closes the connection
  (caproto left it open with its command loop dead), and an ended circuit's
  loops are cancelled;
* a client searching over TCP (``EPICS_CA_NAME_SERVERS``) is not dropped for
  its datagram-style version message (rsrv accepts it);
* clearing a channel ends its subscriptions (caproto kept them until the
  client left);
* a cancelled subscription is found by id, not by testing every subscription
  of the circuit (:mod:`.subscriptions`; caproto's scan is quadratic);
* reads and a new subscription's first value are replies of the batch that
  asked for them, built from a cached encoding (:mod:`.fastpath`; caproto
  converts the value for every read, and routes a first value through the
  update queue); most reads, subscriptions and cancels are answered from
  their bytes, without caproto's command objects (:mod:`.hotlane`), and
  while the reading task waits, as they arrive (:mod:`.inline`: no loop turn
  to wake the task);
* large arrays are written piecewise, never joined into one copy;
* a channel whose creation failed (unknown name, budget) is forgotten once the
  failure is sent (caproto kept it in the circuit's channel table forever);
* a new channel beyond the process-wide budget (``PODIOC_MAX_CHANNELS``) is
  refused with ECA_ALLOCMEM and CREATE_CH_FAIL; the circuit stays up;
* the circuit notes when it last heard from the client and last held a
  channel, for the context's liveness check and client-cap eviction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import caproto as ca

from ...access.policy import AccessPolicy
from ...util.tasks import watch
from . import access, fastpath, hotlane, inline, puts
from .backlog import Backlog
from .guard import AsyncioEvent, DisconnectedCircuit, LoopExit, VirtualCircuit
from .limits import CircuitLimits, oversized, too_large, unread_bytes
from .sansio import JOIN_LIMIT, FastSansIO
from .subscriptions import SubscriptionIndex, remove_subscriptions
from .wire import Hot

log = logging.getLogger(__name__)

#: While monitor updates keep coming, a circuit writes them at most this often (s).
BATCH_WINDOW = 0.001
#: Replies collected from one read before they are written.
MAX_BATCH = 1024
READ_SIZE = 65536
#: Buffers larger than JOIN_LIMIT (from .sansio) are written piecewise, in slices
#: of this size, instead of being copied whole.
WRITE_CHUNK = 1 << 18
_COUNTED = (ca.CreateChanRequest, ca.EventAddRequest, ca.ReadNotifyRequest,
            ca.WriteNotifyRequest)
#: DBR types a client may write but not read.
_WRITE_ONLY = (ca.ChannelType.PUT_ACKT, ca.ChannelType.PUT_ACKS)
_NETWORK_ERRORS = (DisconnectedCircuit, asyncio.CancelledError, OSError,
                   ca.CaprotoNetworkError)


class _FastEvent(AsyncioEvent):  # type: ignore[misc]
    """caproto's event with a timeout, without a task when it is already set."""

    async def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        return bool(await super().wait(timeout))


class Circuit(VirtualCircuit):  # type: ignore[misc]
    """One client connection, with its limits, access policy and update backlog."""

    #: False: every request takes caproto's command path (:mod:`.hotlane` is
    #: skipped, as it is while debug logging is on); for comparisons.
    hot_lane = True
    #: False: requests are answered only by the reading task (:mod:`.inline` is
    #: not attached); for tests that drive :meth:`recv` themselves.
    inline_answers = True

    def __init__(self, state: FastSansIO, client: Any, context: Any, *,
                 limits: CircuitLimits | None = None,
                 policy: AccessPolicy | None = None) -> None:
        """``limits`` and ``policy`` default to the context's."""
        super().__init__(state, client, context)
        self.limits: CircuitLimits = limits or context.circuit_limits
        self.policy: AccessPolicy | None = policy or getattr(context, "policy", None)
        self.backlog = Backlog(self.limits.backlog_bytes)
        self.rights_sent: dict[int, ca.AccessRights] = {}  # cid -> rights last reported
        self.write_event = _FastEvent()
        self._updates_ready = asyncio.Event()
        self._loops: list[asyncio.Task[Any]] = []
        now = asyncio.get_running_loop().time()
        #: loop time the client last sent something / last held a channel
        self.last_heard = self.last_channel = now
        self.echo_sent = 0.0
        self.sub_index = SubscriptionIndex(self.subscriptions)
        #: the reading task waits for data (:mod:`.inline` may answer it)
        self.waiting = False
        if self.inline_answers:
            inline.attach(self)

    @property
    def who(self) -> str:
        """The client's address, for log lines."""
        return "{}:{}".format(*self.circuit.address[:2])

    # -- lifecycle ---------------------------------------------------------------
    async def run(self) -> None:
        """Start the circuit's loops (as caproto does); a loop that dies is logged
        when it does, not when the client leaves."""
        self._loops = [
            watch(self.tasks.create(self.command_queue_loop()), f"command loop of {self.who}"),
            watch(self.tasks.create(self.subscription_queue_loop()),
                  f"monitor loop of {self.who}")]
        self._sub_task = self._loops[1]

    async def _start_write_task(self, handle_write: Any) -> None:
        watch(self.tasks.create(handle_write()), f"put from CA client {self.who}")

    async def _on_disconnect(self) -> None:
        self.backlog.clear()
        await super()._on_disconnect()
        current = asyncio.current_task()
        for task in self._loops:  # puts in progress finish: a put is never cut half-way
            if task is not current:
                task.cancel()

    # -- reading and answering -----------------------------------------------------
    async def recv(self) -> None:
        """Read up to 64 KiB (caproto: 4 KiB), process every command in it and
        write all replies at once; TCP back-pressure comes for free (nothing is
        read while a batch is processed)."""
        self.waiting = True  # meanwhile, .inline may answer what arrives
        try:
            data = await self.client.recv(READ_SIZE)
        except OSError:
            data = b""
        finally:
            self.waiting = False
        try:
            await self._answer(self.circuit.parser.feed(data, self.lane_on()))
            self.heard()
            reason = oversized(self.circuit.parser.pending, self.limits.max_payload)
            if reason:
                log.warning("disconnecting CA client %s: it %s", self.who, reason)
                raise DisconnectedCircuit(reason)
        except (DisconnectedCircuit, LoopExit):
            await self._on_disconnect()
            self.circuit.disconnect()
            raise DisconnectedCircuit() from None

    def lane_on(self) -> bool:
        """Requests may be answered from their bytes (:mod:`.hotlane`)."""
        return bool(self.hot_lane) and not self.circuit.log.isEnabledFor(logging.DEBUG)

    def heard(self) -> None:
        """Note that the client sent something (and, if so, holds a channel)."""
        self.last_heard = asyncio.get_running_loop().time()
        if self.circuit.channels:
            self.last_channel = self.last_heard

    async def _answer(self, commands: list[Any]) -> None:
        replies: list[Any] = []
        settled = True  # every waiting reply is encoded (caproto's own act when sent)
        for command in commands:
            if type(command) is Hot:
                reply = hotlane.answer(self, command, settled)
                if reply is None:
                    command = command.full()
                else:
                    if reply:  # b'': a WRITE, done, has no reply
                        replies.append(reply)
                    if len(replies) >= MAX_BATCH:
                        await self._flush(replies)
                        replies, settled = [], True
                    continue
            if replies and isinstance(command, ca.WriteRequest | ca.WriteNotifyRequest):
                await self._flush(replies)  # earlier answers go before the write's
                replies, settled = [], True
            response = await self._command_queue_iteration(command)
            if response:
                replies.extend(response)
                settled = False
            if len(replies) >= MAX_BATCH:
                await self._flush(replies)
                replies, settled = [], True
        if replies:
            await self._flush(replies)

    async def _flush(self, replies: list[Any]) -> None:
        """Send ``replies``; then forget the channels whose creation they refused."""
        failed = [r.cid for r in replies if isinstance(r, ca.CreateChFailResponse)]
        await self.send(*replies)
        channels = self.circuit.channels
        for cid in failed:
            chan = channels.get(cid)
            if chan is not None and chan.sid is None:
                del channels[cid]

    async def _wake_new_command(self) -> None:
        """Nothing waits on caproto's condition: :meth:`recv` answers directly."""

    async def command_queue_loop(self) -> None:
        """Commands are answered by :meth:`recv`; nothing is queued."""
        self.write_event.set()

    async def _command_queue_iteration(self, command: Any) -> Any:
        if (isinstance(command, ca.VersionRequest) and self.circuit.priority is not None
                and command.priority != self.circuit.priority):
            # A TCP name-server client frames each batch of searches like a datagram:
            # its version message's priority field is the "sequence valid" flag.
            return None
        try:
            return await super()._command_queue_iteration(command)
        except (DisconnectedCircuit, asyncio.CancelledError):
            raise
        except Exception as exc:  # LoopExit, or a bug in caproto's error path
            reason = str(exc) if isinstance(exc, LoopExit) else f"{type(exc).__name__}: {exc}"
            log.warning("closing the CA circuit of %s after a protocol error: %s",
                        self.who, reason)
            raise DisconnectedCircuit(reason) from None

    async def _process_command(self, command: Any) -> Any:
        refused = self._over_limits(command)
        if refused is None and isinstance(command, ca.CreateChanRequest):
            refused = self._over_budget(command)
        if refused is None:
            refused = access.refuse(self, command)
        if refused is not None:
            return refused
        if isinstance(command, ca.WriteNotifyRequest | ca.WriteRequest):
            return await puts.handle_write(self, command)
        if isinstance(command, ca.EventCancelRequest):
            return await self._cancel(command)
        if isinstance(command, ca.ClearChannelRequest):
            chan, _ = self._get_db_entry_from_command(command)
            await self._remove(self.sub_index.of_channel(chan))
        if isinstance(command, ca.EventAddRequest):
            return await self._subscribe(command)
        if isinstance(command, ca.ReadNotifyRequest | ca.ReadRequest):
            return await self._read(command)
        replies = await super()._process_command(command)
        if isinstance(command, ca.EventsOffRequest):
            for sub_spec, sub in self.backlog.park():  # the newest follows events-on
                resend = self.subscriptions_to_resend.setdefault(sub_spec, [])
                if sub not in resend:
                    resend.append(sub)
        elif isinstance(command, ca.CreateChanRequest):
            replies = access.fix_create_replies(self, command, replies)
        return replies

    def held(self) -> int:
        """Channels, subscriptions and requests in progress the client holds (the
        object limit, :mod:`.limits`, bounds their sum)."""
        state = self.circuit
        return len(state.channels) + len(state.event_add_commands) + len(state._ioids)

    def _over_limits(self, command: Any) -> list[Any] | None:
        """Close the circuit ([] = no reply) when a message is too large or the
        client holds too much; else None. Messages still arriving are caught
        by :func:`.limits.oversized` in :meth:`recv`."""
        reason = too_large(command, self.limits.max_payload)
        if not reason and isinstance(command, _COUNTED):
            held = self.held()
            if held > self.limits.max_objects:
                reason = (f"it holds {held} channels, subscriptions and requests "
                          f"(limit {self.limits.max_objects})")
        if not reason:
            return None
        log.warning("disconnecting CA client %s: %s", self.who, reason)
        try:
            self.client.close()  # the reading side sees the end and cleans up
        except Exception:
            log.debug("closing %s failed", self.who, exc_info=True)
        return []

    def _over_budget(self, command: Any) -> list[Any] | None:
        """ECA_ALLOCMEM and CREATE_CH_FAIL when the process-wide channel budget is spent."""
        budget = getattr(self.context, "channel_budget", None)
        # caproto has registered the channel already: it is counted
        reason = (budget.admit("CA", command.name, self.who, counted=True)
                  if budget is not None else "")
        if not reason:
            return None
        return [ca.ErrorResponse(command, command.cid, status=ca.CAStatus.ECA_ALLOCMEM,
                                 error_message=f"{command.name}: {reason}"),
                ca.CreateChFailResponse(command.cid)]

    async def _send_buffers(self, *buffers: Any) -> None:
        """Write small messages joined (one write); a large buffer (a big array)
        piecewise with back-pressure, never copied whole."""
        if len(buffers) == 1 and type(buffers[0]) is bytes and len(buffers[0]) <= JOIN_LIMIT:
            await self.client.send(buffers[0])  # already joined (FastSansIO.send)
            return
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

    # -- monitors ----------------------------------------------------------------
    def queue_update(self, sub_spec: Any, sub: Any, command: Any) -> None:
        """Queue one update for the next batch (see :class:`.backlog.Backlog`)."""
        quiet = not self.backlog.dropped
        if self.backlog.add(sub_spec, sub, command, unread_bytes(self.client)):
            self._updates_ready.set()
        if quiet and self.backlog.dropped:
            log.warning("CA client %s is not reading its socket: dropping updates until "
                        "it does (it then gets the newest values)", self.who)

    async def _read(self, command: Any) -> Any:
        """A read; one that cannot be converted to the type asked for (a text as a
        DBR_DOUBLE) is answered ECA_GETFAIL, a write-only type (DBR_PUT_ACKT)
        ECA_BADTYPE, as rsrv does (caproto: an internal error, which libca treats
        as fatal). Most are answered from a cached encoding (:mod:`.fastpath`)."""
        try:
            if type(command) is ca.ReadNotifyRequest:
                fast = await fastpath.read(self, command)
                if fast is not None:
                    return fast
            return await super()._process_command(command)
        except ca.CaprotoConversionError:
            return self._read_refused(command)

    def _read_refused(self, command: Any) -> list[Any]:
        chan, _ = self._get_db_entry_from_command(command)
        data_type = ca.ChannelType(command.data_type)
        status = (ca.CAStatus.ECA_BADTYPE if data_type in _WRITE_ONLY
                  else ca.CAStatus.ECA_GETFAIL)
        return [ca.ErrorResponse(command, chan.cid, status=status,
                                 error_message=f"{chan.name}: its value cannot be read as "
                                 f"{data_type.name}"[:200])]

    async def _subscribe(self, command: Any) -> Any:
        """A subscription made in place with its first value as the reply
        (:mod:`.fastpath`), else made by caproto and then indexed by id."""
        fast = await fastpath.subscribe(self, command)
        if fast is not None:
            return fast
        self.sub_index.pending = command.subscriptionid
        chan, db_entry = self._get_db_entry_from_command(command)
        try:
            replies = await super()._process_command(command)
        except ca.CaprotoConversionError:  # caproto added it before its first read failed
            await self._cull_subscriptions(
                db_entry, lambda sub: sub.subscriptionid == command.subscriptionid)
            return self._read_refused(command)
        finally:
            self.sub_index.pending = None
        self.sub_index.added(chan, db_entry, command)
        return replies

    async def _cancel(self, command: Any) -> list[Any]:
        """Cancel one subscription, found by id (see :mod:`.subscriptions`)."""
        chan, db_entry = self._get_db_entry_from_command(command)
        pair = self.sub_index.find(command.subscriptionid)
        if pair is not None and pair[1].channel is chan:
            await self._remove([pair])
            data_count = pair[1].data_count
        else:
            data_count = db_entry.length
        return [ca.EventCancelResponse(command.data_type, chan.sid, command.subscriptionid,
                                       data_count)]

    async def _remove(self, pairs: list[Any]) -> None:
        await remove_subscriptions(self, pairs)
        self.forget(pairs)

    def forget(self, pairs: Sequence[Any]) -> None:
        """Drop removed subscriptions from the index and their waiting updates:
        nothing of theirs may follow the cancel reply."""
        self.sub_index.forget(pairs)
        for _, sub in pairs:
            self.backlog.discard(sub.subscriptionid)

    async def _cull_subscriptions(self, db_entry: Any, func: Any) -> Any:
        """caproto's scan (used when the circuit ends), with podioc's removal."""
        removed = [(spec, sub) for spec, subs in self.subscriptions.items()
                   for sub in subs if func(sub)]
        await self._remove(removed)
        return tuple(removed)

    async def subscription_queue_loop(self) -> None:
        """Send everything pending in one write: at once after a quiet spell, and
        at most once per :data:`BATCH_WINDOW` while updates keep coming (caproto
        lets its batching delay grow to a second under load)."""
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
                commands = self.backlog.take(self.circuit.event_add_commands)
                if not commands:
                    continue
                last = loop.time()
                try:
                    await self.send(*commands)
                except _NETWORK_ERRORS:
                    raise
                except Exception:  # one bad batch must not end every monitor
                    log.exception("CA client %s: dropped %d monitor updates that could not "
                                  "be sent", self.who, len(commands))
        except _NETWORK_ERRORS:
            pass  # the reading side sees the disconnection and cleans up
