"""Requests answered as their bytes arrive, while the circuit's reading task waits.

A client that asks one thing at a time (``caget``, a display reading a PV, a
script in a loop) waits a round trip per request. Through asyncio's streams,
that round trip costs the server an extra turn of the event loop: the
socket's data wakes the reading task, which runs in the next turn. Here the
bytes are looked at where asyncio hands them over (the stream reader's
``feed_data``, called by its protocol's ``data_received``): when the reading
task is waiting for data and every complete message is one :mod:`.hotlane`
answers, they are answered at once and the replies written in one go.
Everything else goes to the stream as before, unchanged and in order:

- a batch with any message the lane does not answer (the whole batch, parsed
  again by the task; parsing has no side effects);
- the messages after one the lane declines (their bytes, for the task);
- an incomplete message at the end (the task keeps it and checks its size);
- a read larger than :data:`SMALL`, part of a burst (``catime``'s 10,000
  gets): the task answers all that has arrived by its turn in one batch;
- anything while the task is busy, a put or reply is being written in pieces
  (the send lock is held), the socket has replies waiting to be written
  (back-pressure: the task's writes wait for the client to read), or the
  lane is off (debug logging, ``Circuit.hot_lane``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import hotlane
from .wire import Hot

log = logging.getLogger(__name__)

#: Bytes in one read above which the task answers (a burst answered here chunk
#: by chunk takes more writes than the task's one per batch).
SMALL = 2048


def attach(circuit: Any) -> None:
    """Route the bytes the circuit's stream receives through :func:`received`."""
    reader = circuit.client.reader
    feed: Callable[[bytes], None] = reader.feed_data

    def feed_data(data: bytes) -> None:
        rest = received(circuit, data)
        if rest:
            circuit.waiting = False  # the task wakes up for these
            feed(rest)

    reader.feed_data = feed_data


def received(circuit: Any, data: bytes) -> bytes:
    """Answer what arrived if the lane can; returns the bytes left for the task."""
    if not (circuit.waiting and 0 < len(data) <= SMALL and circuit.lane_on()):
        return data
    client = circuit.client
    if client.send_lock.locked() or client.writer.transport.get_write_buffer_size():
        return data
    parser = circuit.circuit.parser
    before = parser.pending
    try:
        commands = parser.feed(data, True)
    except Exception:  # a malformed message: the task meets it and ends the circuit
        commands = []
    if not commands or any(type(c) is not Hot for c in commands):
        parser.pending = before  # the task parses it all again
        return data
    tail, parser.pending = bytes(parser.pending), bytearray()
    replies: list[bytes] = []
    try:
        for index, command in enumerate(commands):
            reply = hotlane.answer(circuit, command, True)
            if reply is None:  # the task answers this one and the rest
                tail = b"".join(bytes(c.raw) for c in commands[index:]) + tail
                break
            if reply:
                replies.append(reply)
    except Exception:  # a bug: the connection ends, as when the task's answer fails
        log.exception("closing the CA circuit of %s: answering its requests failed",
                      circuit.who)
        client.writer.write(b"".join(replies))
        client.writer.transport.close()
        return b""
    if replies:
        client.writer.write(b"".join(replies))
    circuit.heard()
    return tail
