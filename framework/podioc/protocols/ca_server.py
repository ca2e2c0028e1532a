"""podioc's caproto asyncio server: a refused put is answered the way EPICS does.

caproto answers any failed write with an error message only; caproto's own
client then waits until it times out. podioc answers a refused put-callback
(WRITE_NOTIFY) with a WRITE_NOTIFY response carrying ECA_PUTFAIL, as rsrv
does, followed by an error message that names the reason (libca prints it).
"""

from __future__ import annotations

import logging
from typing import Any

import caproto as ca
from caproto._data import Forbidden
from caproto.server.common import DisconnectedCircuit

from ..errors import PutRefused
from . import ca_access, ca_limits
from .ca_discovery import Discovery
from .ca_fast import FastCircuit as _VirtualCircuit
from .ca_fast import FastContext as _Context

log = logging.getLogger(__name__)


class Circuit(_VirtualCircuit):
    """One client connection."""

    async def recv(self) -> None:
        await super().recv()
        reason = ca_limits.oversized(self, getattr(self.context, "ca_max_payload", 1 << 62))
        if reason:
            log.warning("disconnecting CA client %s:%d: it %s", *self.circuit.address, reason)
            await self._on_disconnect()
            raise DisconnectedCircuit(reason)

    async def _on_disconnect(self) -> None:
        await super()._on_disconnect()
        ca_limits.cancel_tasks(self)  # caproto leaves the command loop waiting forever

    def queue_update(self, sub_spec: Any, sub: Any, command: Any) -> None:
        if ca_limits.admit_update(self, sub_spec, sub, command):  # per-client byte budget
            super().queue_update(sub_spec, sub, command)

    async def _command_queue_iteration(self, command: Any) -> Any:
        if (isinstance(command, ca.VersionRequest) and self.circuit.priority is not None
                and command.priority != self.circuit.priority):
            # A client searching over TCP (EPICS_CA_NAME_SERVERS) frames each batch
            # of searches like a datagram: a version message whose priority field
            # is really the "sequence number valid" flag (1). caproto's circuit
            # takes it for a priority change and drops the client; rsrv accepts it.
            return None
        # an error caproto cannot recover from closes the circuit (see ca_limits)
        return await ca_limits.end_on_error(self, super()._command_queue_iteration(command))

    async def _process_command(self, command: Any) -> Any:
        policy = getattr(self.context, "access_policy", None)
        refused = ca_limits.intercept(self, command)  # a client holding too much
        if refused is None:
            refused = ca_access.intercept(policy, self, command)  # rules, by peer address
        if refused is not None:
            return refused
        if isinstance(command, ca.WriteNotifyRequest | ca.WriteRequest):
            return await self._handle_write(command)
        if isinstance(command, ca.ClearChannelRequest):
            # caproto compares a Subscription's channel with the sid, so clearing a
            # channel never ended its subscriptions (they piled up until disconnect).
            chan, db_entry = self._get_db_entry_from_command(command)
            await self._cull_subscriptions(db_entry, lambda sub: sub.channel is chan)
        replies = await super()._process_command(command)
        if isinstance(command, ca.CreateChanRequest):
            replies = ca_access.fix_create_replies(policy, self, command, replies)
        return replies

    async def _handle_write(self, command: Any) -> list[Any]:
        chan, db_entry = self._get_db_entry_from_command(command)
        notify = isinstance(command, ca.WriteNotifyRequest)

        async def handle_write() -> None:
            try:
                await db_entry.auth_write(
                    self.client_hostname, self.client_username, command.data,
                    command.data_type, command.metadata, user_address=self.circuit.address)
            except Exception as exc:
                status = ca.CAStatus.ECA_PUTFAIL
                message = str(exc) if isinstance(exc, PutRefused) else (
                    f"{type(exc).__name__}: {exc}")
                if isinstance(exc, Forbidden):  # a client that ignores its access rights
                    status = ca.CAStatus.ECA_NOWTACCESS
                    message = f"{chan.name}: no write access"
                if isinstance(exc, PutRefused | Forbidden):
                    log.info("put refused for %s (%s): %s", self.client_hostname,
                             self.circuit.address[0], message)
                else:
                    log.exception("put to %s failed", chan.name)
                replies = []
                if notify:
                    replies.append(chan.write(ioid=command.ioid, status=status,
                                              data_count=db_entry.length))
                cid = chan.cid  # the channel may be gone from the circuit by now
                replies.append(ca.ErrorResponse(command, cid, status=status,
                                                error_message=message[:200]))
                await self.send(*replies)
            else:
                if notify:
                    await self.send(chan.write(ioid=command.ioid, status=True,
                                               data_count=db_entry.length))
            finally:
                self.write_event.set()

        self.write_event.clear()
        await self._start_write_task(handle_write)
        return []


class Context(_Context):
    """caproto's asyncio server context with podioc's circuit and CA discovery
    (search sockets, unicast fan-out, beacons: see :mod:`.ca_discovery`)."""

    CircuitClass = Circuit

    def __init__(self, pvdb: Any, interfaces: Any = None) -> None:
        super().__init__(pvdb, interfaces)
        self.discovery = Discovery(self)

    async def tcp_handler(self, client: Any, addr: Any) -> None:
        if not ca_limits.refuse_client(self, client, addr):  # PODIOC_MAX_CLIENTS
            await super().tcp_handler(client, addr)

    async def _create_broadcaster_transport(self, interface: str) -> None:
        await self.discovery.bind(interface)

    async def broadcaster_receive_loop(self) -> None:
        await self.discovery.receive_loop()

    async def broadcast_beacon_loop(self) -> None:
        await self.discovery.beacon_loop()
