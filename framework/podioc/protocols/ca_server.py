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
from caproto.asyncio.server import Context as _Context
from caproto.asyncio.server import VirtualCircuit as _VirtualCircuit

from ..errors import PutRefused

log = logging.getLogger(__name__)


class Circuit(_VirtualCircuit):  # type: ignore[misc]
    """One client connection."""

    async def _process_command(self, command: Any) -> Any:
        if isinstance(command, ca.WriteNotifyRequest | ca.WriteRequest):
            return await self._handle_write(command)
        return await super()._process_command(command)

    async def _handle_write(self, command: Any) -> list[Any]:
        chan, db_entry = self._get_db_entry_from_command(command)
        notify = isinstance(command, ca.WriteNotifyRequest)

        async def handle_write() -> None:
            try:
                await db_entry.auth_write(
                    self.client_hostname, self.client_username, command.data,
                    command.data_type, command.metadata, user_address=self.circuit.address)
            except Exception as exc:
                message = str(exc) if isinstance(exc, PutRefused) else (
                    f"{type(exc).__name__}: {exc}")
                if isinstance(exc, PutRefused):
                    log.info("put refused for %s (%s): %s", self.client_hostname,
                             self.circuit.address[0], message)
                else:
                    log.exception("put to %s failed", chan.name)
                replies = []
                if notify:
                    replies.append(chan.write(ioid=command.ioid, status=ca.CAStatus.ECA_PUTFAIL,
                                              data_count=db_entry.length))
                cid = self.circuit.channels_sid[command.sid].cid
                replies.append(ca.ErrorResponse(command, cid, status=ca.CAStatus.ECA_PUTFAIL,
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


class Context(_Context):  # type: ignore[misc]
    """caproto's asyncio server context with podioc's circuit."""

    CircuitClass = Circuit
