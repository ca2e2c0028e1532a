"""Client puts on Channel Access: a refused put is answered the way EPICS does.

caproto answers any failed write with an error message only; caproto's own
client then waits until it times out. podioc answers a refused put-callback
(WRITE_NOTIFY) with a WRITE_NOTIFY response carrying ECA_PUTFAIL, as rsrv
does, followed by an error message that names the reason (libca prints it).
"""

from __future__ import annotations

import logging
from typing import Any

import caproto as ca
from caproto import Forbidden

from ...errors import PutRefused

log = logging.getLogger(__name__)


async def handle_write(circuit: Any, command: Any) -> list[Any]:
    """Start the put of a WRITE or WRITE_NOTIFY in its own task; replies come from it."""
    chan, db_entry = circuit._get_db_entry_from_command(command)
    notify = isinstance(command, ca.WriteNotifyRequest)

    async def write() -> None:
        try:
            await db_entry.auth_write(
                circuit.client_hostname, circuit.client_username, command.data,
                command.data_type, command.metadata, user_address=circuit.circuit.address)
        except Exception as exc:
            await circuit.send(*_refusal(circuit, chan, db_entry, command, exc, notify))
        else:
            if notify:
                await circuit.send(chan.write(ioid=command.ioid, status=True,
                                              data_count=db_entry.length))
        finally:
            circuit.write_event.set()

    circuit.write_event.clear()
    await circuit._start_write_task(write)
    return []


def _refusal(circuit: Any, chan: Any, db_entry: Any, command: Any, exc: Exception,
             notify: bool) -> list[Any]:
    status = ca.CAStatus.ECA_PUTFAIL
    message = str(exc) if isinstance(exc, PutRefused) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, Forbidden):  # a client that ignores its access rights
        status = ca.CAStatus.ECA_NOWTACCESS
        message = f"{chan.name}: no write access"
    if isinstance(exc, PutRefused | Forbidden):
        log.info("put refused for %s (%s): %s", circuit.client_hostname,
                 circuit.circuit.address[0], message)
    else:
        log.exception("put to %s failed", chan.name, exc_info=exc)
    replies = []
    if notify:
        replies.append(chan.write(ioid=command.ioid, status=status, data_count=db_entry.length))
    cid = chan.cid  # the channel may be gone from the circuit by now
    replies.append(ca.ErrorResponse(command, cid, status=status, error_message=message[:200]))
    return replies
