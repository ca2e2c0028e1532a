"""Access rules on Channel Access, enforced per circuit with the client's real address.

caproto's ``check_access(hostname, username)`` only sees the host name a
client *claims* (CA_PROTO_HOST_NAME). podioc evaluates rules with the
circuit's peer address instead, at four points of :class:`.circuit.Circuit`:

- channel creation: the CA_PROTO_ACCESS_RIGHTS reply carries the rules' rights;
- read (READ_NOTIFY): without READ the reply has status ECA_NORDACCESS, no data;
- subscribe (EVENT_ADD): without READ an error ECA_NORDACCESS, no subscription;
- write (WRITE / WRITE_NOTIFY): without WRITE the put is refused with
  ECA_NOWTACCESS and nothing changes (TRAPWRITE rules log allowed writes); the
  refusal goes to the put log.

After a SIGHUP reload, changed rights are re-sent to connected channels and
subscriptions of channels that lost READ are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import caproto as ca
from caproto import AccessRights

from ...access.acf import Access
from ...access.hosts import normalize_ip
from ...access.policy import AccessPolicy
from ...model.metadata import WRITABLE_FIELDS
from . import putlog

log = logging.getLogger(__name__)

_RIGHTS = {Access.NONE: AccessRights.NO_ACCESS, Access.READ: AccessRights.READ,
           Access.WRITE: AccessRights.READ | AccessRights.WRITE}


def client_ip(circuit: Any) -> str:
    """The peer address of a server circuit, as the server sees it."""
    return normalize_ip(str(circuit.circuit.address[0]))


def decide(circuit: Any, db_entry: Any) -> tuple[Access, bool]:
    """(rights, trapwrite) of this circuit's client on ``db_entry``, capped by the spec."""
    policy: AccessPolicy | None = circuit.policy
    pv = getattr(db_entry, "pv", None)
    if pv is None:  # not a podioc channel
        return Access.WRITE, False
    field = getattr(db_entry, "field", "")
    writable = field in WRITABLE_FIELDS if field else pv.spec.writable
    cap = Access.WRITE if writable else Access.READ
    if policy is None:
        return cap, False
    access, trap = policy.current.decide(pv.name, circuit.client_username, client_ip(circuit))
    return min(access, cap), trap


def ca_rights(circuit: Any, db_entry: Any) -> AccessRights:
    """The CA access-rights bits for this client on ``db_entry``."""
    return _RIGHTS[decide(circuit, db_entry)[0]]


def _db_entry(circuit: Any, command: Any) -> tuple[Any, Any]:
    chan, db_entry = circuit._get_db_entry_from_command(command)
    return chan, db_entry


def refuse(circuit: Any, command: Any) -> list[Any] | None:
    """Replies refusing ``command`` when the rules forbid it, else None (proceed)."""
    if circuit.policy is None:
        return None
    if isinstance(command, ca.ReadNotifyRequest | ca.ReadRequest | ca.EventAddRequest):
        chan, db_entry = _db_entry(circuit, command)
        if decide(circuit, db_entry)[0] >= Access.READ:
            return None
        if isinstance(command, ca.ReadNotifyRequest):
            return [chan.read(data=b"", data_type=command.data_type, data_count=0,
                              status=ca.CAStatus.ECA_NORDACCESS, ioid=command.ioid)]
        return [ca.ErrorResponse(command, chan.cid, status=ca.CAStatus.ECA_NORDACCESS,
                                 error_message=f"{chan.name}: no read access")]
    if isinstance(command, ca.WriteNotifyRequest | ca.WriteRequest):
        chan, db_entry = _db_entry(circuit, command)
        access, trap = decide(circuit, db_entry)
        who = f"{circuit.client_username or '?'} at {client_ip(circuit)}"
        if access >= Access.WRITE:
            if trap:
                log.info("TRAPWRITE: CA put to %s by %s", chan.name, who)
            return None
        log.info("CA put to %s refused: %s has no write access", chan.name, who)
        reason = f"{chan.name}: no write access for {who}"
        data_type = command.header.data_type  # the int: .data_type makes an enum
        putlog.record(circuit, chan, data_type, putlog.current(db_entry),
                      putlog.requested(db_entry, command.data, data_type), reason)
        replies: list[Any] = []
        if isinstance(command, ca.WriteNotifyRequest):
            replies.append(chan.write(ioid=command.ioid, status=ca.CAStatus.ECA_NOWTACCESS,
                                      data_count=db_entry.length))
        replies.append(ca.ErrorResponse(command, chan.cid, status=ca.CAStatus.ECA_NOWTACCESS,
                                        error_message=reason[:200]))
        return replies
    return None


def fix_create_replies(circuit: Any, command: Any,
                       replies: list[Any] | None) -> list[Any] | None:
    """Replace the rights caproto computed from claimed names with the rules' rights."""
    if not replies:
        return replies
    out = []
    for reply in replies:
        if isinstance(reply, ca.AccessRightsResponse):
            db_entry = circuit.context[command.name]
            rights = ca_rights(circuit, db_entry)
            circuit.rights_sent[command.cid] = rights
            if rights != reply.access_rights:
                reply = ca.AccessRightsResponse(cid=command.cid, access_rights=rights)
        out.append(reply)
    return out


async def resend_rights(context: Any) -> int:
    """Send changed rights to every connected channel; returns how many changed."""
    changed = 0
    for circuit in list(context.circuits):
        if not circuit.connected:
            continue
        sent = circuit.rights_sent
        replies = []
        for cid, chan in list(circuit.circuit.channels.items()):
            try:
                db_entry = context[chan.name]
            except KeyError:
                continue
            rights = ca_rights(circuit, db_entry)
            if sent.get(cid) == rights:
                continue
            sent[cid] = rights
            replies.append(ca.AccessRightsResponse(cid=cid, access_rights=rights))
            if AccessRights.READ not in rights and chan.sid is not None:
                await circuit._cull_subscriptions(
                    db_entry, lambda sub, sid=chan.sid: sub.channel.sid == sid)
        if replies:
            changed += len(replies)
            try:  # a client that does not read must not hold up the others
                await asyncio.wait_for(circuit.send(*replies), timeout=5.0)
            except Exception as exc:  # gone, or not reading
                log.debug("could not send access rights to %s: %s", circuit, exc)
    return changed
