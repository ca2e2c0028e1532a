"""caproto's sans-I/O server circuit state with a cheap steady state.

podioc differs from caproto here on purpose, for speed only: the messages of
a connected channel take caproto's own state transitions and bookkeeping
without a pass through its state machine (same outcome, ~20 us less each).
"""

from __future__ import annotations

import logging
from typing import Any

import caproto as ca

from .wire import CommandParser

#: Messages up to this size in all are joined into one buffer before they are written.
JOIN_LIMIT = 1 << 16
_BY_SID = (ca.ReadNotifyRequest, ca.ReadRequest, ca.WriteNotifyRequest, ca.WriteRequest,
           ca.EventAddRequest)
_BY_IOID = (ca.ReadNotifyResponse, ca.ReadResponse, ca.WriteNotifyResponse)


class FastSansIO(ca.VirtualCircuit):  # type: ignore[misc]
    """caproto's (sans-I/O) server circuit state, with the steady state made cheap.

    caproto runs every message through each channel's state machine for both
    roles (~25 enum hashes and dict lookups, ~20 us), and measures every sent
    message for a debug log line even when debug logging is off. Here the
    messages of a connected channel (reads, writes, monitors: CONNECTED stays
    CONNECTED), the three messages that create a channel, and error replies on
    a connected circuit (for each, caproto updates every channel of the circuit:
    minutes for thousands of refused channels) take their known
    transitions (caproto's table, ``_state.py``) and exactly caproto's
    bookkeeping (``_ioids``, ``event_add_commands``, ``event_cancel_commands``,
    ``channels_sid``, the same checks) directly; so do a subscription's cancel
    request and its reply. Every other message, and any channel or circuit in
    another state, takes caproto's full path, errors included.
    """

    def __init__(self, our_role: Any, address: Any, priority: Any) -> None:
        super().__init__(our_role, address, priority)
        self.parser = CommandParser(self.their_role)

    def recv(self, *buffers: Any) -> tuple[list[Any], int]:
        return self.parser.feed(b"".join(buffers)), 0

    def send(self, *commands: Any, extra: Any = None) -> list[Any]:
        """The messages' buffers; joined into one when they are small in all (one
        copy of a few KiB is cheaper than handling each buffer on its way out).
        A ``bytes`` among ``commands`` is a message already encoded, sent as is."""
        if self.log.isEnabledFor(logging.DEBUG) and not any(
                type(command) is bytes for command in commands):
            return super().send(*commands, extra=extra)  # type: ignore[no-any-return]
        buffers: list[Any] = []
        total = 0
        for command in commands:
            if type(command) is bytes:  # a reply already encoded, its state kept (.hotlane)
                buffers.append(command)
                total += len(command)
                continue
            self._process_command(self.our_role, command)
            header = command.header
            buffers.append(header)
            buffers.extend(command.buffers)
            total += header.payload_size
        if total <= JOIN_LIMIT:
            try:
                return [b"".join(buffers)]
            except (TypeError, BufferError):  # a buffer that is not contiguous bytes
                pass
        return buffers

    def _steady(self, chan: Any) -> bool:
        """Both roles of ``chan`` and the circuit's server role are CONNECTED."""
        for state in chan.states.states.values():  # values: no Enum.__hash__ (Python) call
            if state is not ca.CONNECTED:
                return False
        return bool(self.states.states[ca.SERVER] is ca.CONNECTED)

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

    def connect(self, chan: Any, data_type: Any, data_count: int, sid: int,
                command: Any) -> None:
        """Leave ``chan`` as its CREATE_CHAN reply (native type and count, ``sid``)
        does: both roles CONNECTED, found by its sid."""
        chan.native_data_type = data_type
        chan.native_data_count = data_count
        self._move(chan, command, ca.CONNECTED, ca.CONNECTED)
        chan.sid = sid
        chan.protocol_version = self.protocol_version
        self.channels_sid[sid] = chan

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
                self.connect(chan, command.data_type, command.data_count, command.sid,
                             command)
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
        elif (kind is ca.ErrorResponse and role is self.our_role
              and self.states.states[ca.SERVER] is ca.CONNECTED):
            # CONNECTED stays CONNECTED; caproto then updates every channel of the
            # circuit (O(channels) per error: minutes for thousands of refusals)
            return
        elif kind is ca.EventCancelRequest and role is self.their_role:
            added = self.event_add_commands.get(command.subscriptionid)
            if (added is not None and added.data_type == command.data_type
                    and added.sid == command.sid):
                chan = self.channels_sid.get(added.sid)
                if chan is not None and self._steady(chan):
                    self.event_cancel_commands[command.subscriptionid] = added
                    return
        elif kind is ca.EventCancelResponse and role is self.our_role:
            added = self.event_add_commands.get(command.subscriptionid)
            if (added is not None and command.subscriptionid in self.event_cancel_commands
                    and added.data_type == command.data_type and added.sid == command.sid):
                chan = self.channels_sid.get(added.sid)
                if chan is not None and self._steady(chan):
                    del self.event_add_commands[command.subscriptionid]
                    del self.event_cancel_commands[command.subscriptionid]
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
