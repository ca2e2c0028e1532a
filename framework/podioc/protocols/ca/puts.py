"""Client puts on Channel Access: a refused put is answered the way EPICS does.

caproto answers any failed write with an error message only; caproto's own
client then waits until it times out. podioc answers a refused put-callback
(WRITE_NOTIFY) with a WRITE_NOTIFY response carrying ECA_PUTFAIL, as rsrv
does, followed by an error message that names the reason (libca prints it).
Every put, accepted or refused, goes to the put log (:mod:`.putlog`).
"""

from __future__ import annotations

import logging
from typing import Any

import caproto as ca
from caproto import AccessRights, ChannelType, Forbidden

from ...errors import PutRefused
from . import putlog

log = logging.getLogger(__name__)

_WRITE = int(AccessRights.WRITE)


async def handle_write(circuit: Any, command: Any) -> list[Any]:
    """Answer a WRITE or WRITE_NOTIFY: at once (replies returned) when the channel
    says the write has nothing to await (``writes_now``), as rsrv does a soft
    record's put; otherwise in its own task, whose replies it sends itself.

    Each put, accepted or refused, is recorded in the put log (:mod:`.putlog`)."""
    chan, db_entry = circuit._get_db_entry_from_command(command)
    notify = isinstance(command, ca.WriteNotifyRequest)
    if writes_now(db_entry, command.data_type):
        old = putlog.current(db_entry)
        try:
            stored = write_now(circuit, chan, db_entry, command.data, command.data_type)
        except Exception as exc:
            return _outcome(circuit, chan, db_entry, command, notify, old, exc=exc)
        return _outcome(circuit, chan, db_entry, command, notify, old, stored=stored)

    async def write() -> None:
        old = putlog.current(db_entry)
        try:
            try:
                stored = await db_entry.auth_write(
                    circuit.client_hostname, circuit.client_username, command.data,
                    command.data_type, command.metadata, user_address=circuit.circuit.address)
            except Exception as exc:
                replies = _outcome(circuit, chan, db_entry, command, notify, old, exc=exc)
            else:
                replies = _outcome(circuit, chan, db_entry, command, notify, old,
                                   stored=stored)
            if replies:
                await circuit.send(*replies)
        finally:
            circuit.write_event.set()

    circuit.write_event.clear()
    await circuit._start_write_task(write)
    return []


def writes_now(db_entry: Any, data_type: ChannelType) -> bool:
    """True when the channel says a write of ``data_type`` has nothing to await."""
    says = getattr(db_entry, "writes_now", None)
    return says is not None and bool(says(data_type))


def write_now(circuit: Any, chan: Any, db_entry: Any, data: Any, data_type: ChannelType) -> Any:
    """Do a put that :func:`writes_now` allows; returns the value stored. Raises
    (Forbidden, PutRefused...) having changed nothing when it is refused."""
    _check_write(circuit, chan, db_entry)
    return db_entry.write_now(data, data_type)


def write_value_now(circuit: Any, chan: Any, db_entry: Any, value: Any) -> Any:
    """:func:`write_now` of a value already in the PV's type (a count-1 put of a
    DBR type in the channel's ``exact_puts``): no caproto conversion."""
    _check_write(circuit, chan, db_entry)
    return db_entry.pv.put_now(value)


def _check_write(circuit: Any, chan: Any, db_entry: Any) -> None:
    rights = db_entry.check_access(circuit.client_hostname, circuit.client_username)
    if not int(rights) & _WRITE:  # int: IntFlag's & is a Python call
        raise Forbidden(f"{chan.name}: no write access")


def log_accepted(circuit: Any, chan: Any, db_entry: Any, data: Any, data_type: int,
                 old: Any, stored: Any) -> None:
    """The put log's line of an accepted put (``stored`` None: as sent)."""
    putlog.record(circuit, chan, data_type, old,
                  stored if stored is not None else putlog.requested(db_entry, data, data_type))


def _outcome(circuit: Any, chan: Any, db_entry: Any, command: Any, notify: bool, old: Any,
             *, stored: Any = None, exc: Exception | None = None) -> list[Any]:
    """Log a put that stored ``stored`` or failed with ``exc``; returns its replies."""
    data_type = command.header.data_type  # the int: .data_type makes an enum
    if exc is not None:
        replies, message = _refusal(circuit, chan, db_entry, command, exc, notify)
        putlog.record(circuit, chan, data_type, old,
                      putlog.requested(db_entry, command.data, data_type), message)
        return replies
    log_accepted(circuit, chan, db_entry, command.data, data_type, old, stored)
    if notify:
        return [chan.write(ioid=command.ioid, status=True, data_count=db_entry.length)]
    return []


def _refusal(circuit: Any, chan: Any, db_entry: Any, command: Any, exc: Exception,
             notify: bool) -> tuple[list[Any], str]:
    """The replies refusing a put, and the reason given."""
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
    return replies, message
