"""The Channel Access server context: caproto's asyncio ``Context`` as podioc runs it.

Where podioc deliberately differs from caproto, and why:

* circuits are :class:`.circuit.Circuit` with the server's limits and access
  policy, built with :class:`.sansio.FastSansIO` state;
* at the client cap the oldest circuit that has held no channel for
  :data:`~podioc.limits.resources.IDLE_GRACE` s is closed to make room, else the
  new client is closed at once; accepted sockets get TCP_NODELAY (caproto's add
  ~40 ms to a reply that follows another) and keepalive;
* a circuit silent for ``EPICS_CA_CONN_TMO`` is sent an echo
  (:meth:`ServerContext.liveness_loop`), so a vanished client is dropped;
* channels count against the process-wide budget (``PODIOC_MAX_CHANNELS``);
* searches and beacons are podioc's :class:`.discovery.Discovery` (search
  replies echo the client's sequence number, beacons go to each interface's
  broadcast address, unicast searches fan out to the node's other servers);
* channel updates wait in a :class:`.updates.CoalescingQueue` (newest wins)
  and go to each circuit's bounded backlog, never to a queue that can block;
* an update of a subscription cancelled while it waited is dropped;
* a change reaches only the subscriptions whose event mask (DBE_VALUE,
  DBE_LOG, DBE_ALARM, DBE_PROPERTY) takes it, as in EPICS base;
* subscriptions whose updates were dropped for a slow client get their newest
  value once it reads again (:meth:`ServerContext.resync_loop`);
* access rights are re-sent to connected clients when the rules are reloaded;
* every client put, accepted or refused, goes to the put log (``putlog``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import caproto as ca
from caproto import apply_arr_filter

from ...access.policy import AccessPolicy
from ...limits import ratelimit
from ...limits.budget import ChannelBudget
from ...limits.resources import IDLE_GRACE, Limits
from ...model.state import PV
from ...util.tasks import watch
from .access import resend_rights
from .backlog import CONGESTED_BYTES
from .circuit import Circuit
from .discovery import Discovery
from .guard import AsyncioContext, DisconnectedCircuit, apply_deadband_filter, host_endian
from .limits import CircuitLimits, set_socket_options, unread_bytes
from .sansio import FastSansIO
from .updates import CoalescingQueue, event_add_response

if TYPE_CHECKING:  # imports pydantic (its settings): not needed to serve
    from ...putlog import PutLog

log = logging.getLogger(__name__)

#: How often subscriptions whose updates were dropped are checked for a resend (s).
RESYNC_PERIOD = 0.5


class ServerContext(AsyncioContext):  # type: ignore[misc]
    """Serve ``pvdb`` on ``interfaces`` with podioc's circuits and discovery."""

    CircuitClass = Circuit

    def __init__(self, pvdb: Any, interfaces: Iterable[str] | None = None, *,
                 pvs: Iterable[PV] = (), limits: Limits | None = None,
                 policy: AccessPolicy | None = None, search_fanout: bool = True,
                 channel_budget: ChannelBudget | None = None,
                 putlog: PutLog | None = None) -> None:
        super().__init__(pvdb, list(interfaces) if interfaces is not None else None)
        self.putlog = putlog  # every client put is recorded there (see .putlog)
        ratelimit.install()
        self.circuit_limits = CircuitLimits.for_pvs(limits or Limits(), pvs)
        self.policy = policy
        self.subscription_queue = CoalescingQueue()
        self.discovery = Discovery(self, fanout=search_fanout)
        self.broadcaster = self.discovery.broadcaster
        self._reloads: set[asyncio.Task[int]] = set()
        #: Set while a client may be connected: the resync loop sleeps on it when
        #: there is none (an idle IOC's loop does not wake twice a second for it).
        self._clients_seen = asyncio.Event()
        self.channel_budget = channel_budget
        self.evicted = 0
        if channel_budget is not None:
            channel_budget.register("ca", self.channel_count)
        if policy is not None:
            policy.on_reload(self._on_reload)

    async def run(self, *, log_pv_names: bool = False, startup_hook: Any = None) -> None:
        """Serve until cancelled (caproto's ``run``, plus the resync loop)."""
        watch(self.server_tasks.create(self.resync_loop()), "CA resync loop")
        watch(self.server_tasks.create(self.liveness_loop()), "CA liveness loop")
        await super().run(log_pv_names=log_pv_names, startup_hook=startup_hook)

    # -- clients -------------------------------------------------------------------
    async def tcp_handler(self, client: Any, addr: Any) -> None:
        """One accepted client, from connection to disconnection."""
        set_socket_options(client, self.circuit_limits.dead_peer_timeout)
        if len(self.circuits) >= self.circuit_limits.max_clients and not self._evict_idle():
            log.warning("CA client limit reached (PODIOC_MAX_CLIENTS=%d): refusing the "
                        "connection from %s:%d (every client has held a channel within "
                        "%.0f s)", self.circuit_limits.max_clients, *addr[:2], IDLE_GRACE)
            try:
                client.close()
            except Exception:
                log.debug("closing a refused client failed", exc_info=True)
            return
        circuit = Circuit(FastSansIO(ca.SERVER, addr, None), client, self,
                          limits=self.circuit_limits, policy=self.policy)
        self.circuits.add(circuit)
        self._clients_seen.set()
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

    def _evict_idle(self) -> bool:
        """Close the oldest circuit without channels for IDLE_GRACE s; True if one was."""
        now = asyncio.get_running_loop().time()
        idle = [c for c in self.circuits if not c.circuit.channels
                and now - c.last_channel > IDLE_GRACE and c.connected]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_channel)
        log.warning("CA client limit reached (PODIOC_MAX_CLIENTS=%d): closing %s, which has "
                    "held no channel for %.0f s, to make room",
                    self.circuit_limits.max_clients, victim.who, now - victim.last_channel)
        self.circuits.discard(victim)  # its slot is free now; its reader cleans up
        try:
            victim.client.close()
        except Exception:
            log.debug("closing %s failed", victim.who, exc_info=True)
        self.evicted += 1
        return True

    def channel_count(self) -> int:
        """CA channels open now over all circuits."""
        return sum(len(c.circuit.channels) for c in self.circuits)

    async def liveness_loop(self) -> None:
        """Send an echo to every circuit silent for EPICS_CA_CONN_TMO (once per period):
        a live client's TCP acknowledges it; a vanished one's never does, and the
        user timeout then resets the connection."""
        period = self.circuit_limits.conn_tmo
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.5, period / 4))
            now = loop.time()
            for circuit in list(self.circuits):
                if (circuit.connected and now - circuit.last_heard > period
                        and now - circuit.echo_sent > period):
                    circuit.echo_sent = now
                    try:
                        await circuit.send(ca.EchoResponse())
                    except Exception:
                        log.debug("echo to %s failed", circuit.who, exc_info=True)

    # -- discovery (caproto's hooks) ------------------------------------------------
    async def _create_broadcaster_transport(self, interface: str) -> None:
        await self.discovery.bind(interface)

    async def broadcaster_receive_loop(self) -> None:
        await self.discovery.receive_loop()

    async def broadcast_beacon_loop(self) -> None:
        await self.discovery.beacon_loop()

    # -- monitor updates -------------------------------------------------------------
    async def _subscription_queue_iteration(self, sub_specs: Any, metadata: Any, values: Any,
                                            flags: int, sub: Any) -> None:
        if sub is not None:
            targets = [(sub_specs[0], sub)]
        else:  # a snapshot (the deques may change while this runs) of the subscriptions
            # whose event mask takes this change (caproto ignores masks)
            targets = [(spec, s) for spec in sub_specs if spec.mask & flags
                       for s in tuple(self.subscriptions[spec])]
        for spec, target in targets:
            try:
                self.route_update(spec, target, metadata, values, flags)
            except Exception:  # one subscription's bad update must not stop the others
                log.exception("CA update for %s (client %s) failed", spec.db_entry,
                              target.circuit.who)

    def route_update(self, sub_spec: Any, sub: Any, metadata: Any, values: Any,
                     flags: int) -> None:
        """caproto's per-subscription filtering, then the circuit's backlog (never
        a queue that can block, and so stall every other client)."""
        circuit = sub.circuit
        if not circuit.connected:
            return
        if not circuit.sub_index.is_live(sub_spec, sub):
            return  # cancelled while this waited: nothing may follow the cancel reply
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

    async def resync_loop(self) -> None:
        """Send the newest value of every subscription whose updates were dropped,
        once its client reads again."""
        while True:
            if not self.circuits:
                self._clients_seen.clear()
                await self._clients_seen.wait()
            await asyncio.sleep(RESYNC_PERIOD)
            for circuit in list(self.circuits):
                backlog = circuit.backlog
                if len(backlog.served) > 2 * len(circuit.subscriptions) + 100:
                    backlog.forget_served({sub.subscriptionid for subs in
                                           circuit.subscriptions.values() for sub in subs})
                if (not backlog.stale or not circuit.connected
                        or unread_bytes(circuit.client) > CONGESTED_BYTES):
                    continue
                for sub_spec, sub in backlog.take_stale():
                    if sub in circuit.subscriptions.get(sub_spec, ()):
                        try:
                            await sub.db_entry.subscribe(self.subscription_queue, sub_spec,
                                                         sub)
                        except Exception:
                            log.exception("re-sending %s failed", sub_spec.db_entry)

    # -- access rules ------------------------------------------------------------------
    def _on_reload(self) -> None:
        task = watch(asyncio.get_running_loop().create_task(resend_rights(self)),
                     "re-sending CA access rights")
        self._reloads.add(task)
        task.add_done_callback(self._reloaded)

    def _reloaded(self, task: asyncio.Task[int]) -> None:
        self._reloads.discard(task)
        if not task.cancelled() and task.exception() is None:
            log.info("access rights re-sent to %d connected CA channels", task.result())
