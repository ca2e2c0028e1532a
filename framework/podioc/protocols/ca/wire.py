"""The one Channel Access message framer: headers, sizes and payloads.

A CA message is a 16-byte header (command, payload size, data type, data
count, parameter 1, parameter 2), or a 24-byte extended header when the
payload is 0xFFFF or larger (size field 0xFFFF, count 0, then 32-bit size and
count), followed by the payload. Everything in podioc that reads CA bytes
frames them here: the TCP command parser, the message-size limit and the
search relay.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from caproto import DISCONNECTED, RemoteProtocolError

from .guard import Commands, ExtendedMessageHeader, MessageHeader

HEADER = struct.Struct(">HHHHII")
EXTENDED = struct.Struct(">II")
HEADER_SIZE, EXTENDED_SIZE = 16, 24
CMD_VERSION, CMD_SEARCH, CMD_BEACON, CMD_NOT_FOUND = 0, 6, 13, 14
DONT_REPLY = 10
MINOR_VERSION = 13


@dataclass
class Message:
    """One CA message: header fields and payload."""

    command: int
    data_type: int
    data_count: int
    p1: int
    p2: int
    payload: bytes = b""

    def encode(self) -> bytes:
        """The message on the wire (a standard header; payloads below 64 KiB)."""
        return HEADER.pack(self.command, len(self.payload), self.data_type, self.data_count,
                           self.p1, self.p2) + self.payload


class Frame(NamedTuple):
    """Where one message lies in a buffer."""

    command: int
    header_size: int  # 16, or 24 for an extended header
    payload_size: int
    end: int  # offset just past the payload


def frame(buffer: bytes | bytearray | memoryview, offset: int = 0) -> Frame | None:
    """The message starting at ``offset``, or None while its header is incomplete.

    The payload may not have arrived yet: ``end`` can lie beyond the buffer.
    """
    if offset + HEADER_SIZE > len(buffer):
        return None
    command, size, _, count = struct.unpack_from(">HHHH", buffer, offset)
    if size == 0xFFFF and count == 0:
        if offset + EXTENDED_SIZE > len(buffer):
            return None
        size = EXTENDED.unpack_from(buffer, offset + HEADER_SIZE)[0]
        return Frame(command, EXTENDED_SIZE, size, offset + EXTENDED_SIZE + size)
    return Frame(command, HEADER_SIZE, size, offset + HEADER_SIZE + size)


def declared_payload(buffer: bytes | bytearray | memoryview) -> int:
    """Payload size declared by the header at the start of ``buffer`` (-1: not yet known)."""
    found = frame(buffer)
    return -1 if found is None else found.payload_size


def frames(buffer: bytes | bytearray | memoryview) -> Iterator[Frame]:
    """The complete messages at the start of ``buffer``, in order."""
    offset = 0
    while (found := frame(buffer, offset)) is not None and found.end <= len(buffer):
        yield found
        offset = found.end


def decode(data: bytes) -> list[Message]:
    """A datagram's messages with standard headers (stops at anything else).

    UDP messages (searches, versions, beacons) never use the extended header.
    """
    out = []
    for found in frames(data):
        if found.header_size != HEADER_SIZE:
            break
        start = found.end - found.payload_size - HEADER_SIZE
        _, _, dtype, count, p1, p2 = HEADER.unpack_from(data, start)
        out.append(Message(found.command, dtype, count, p1, p2,
                           bytes(data[start + HEADER_SIZE:found.end])))
    return out


CMD_EVENT_ADD, CMD_EVENT_CANCEL, CMD_WRITE, CMD_READ_NOTIFY, CMD_WRITE_NOTIFY = 1, 2, 4, 15, 19
CMD_CREATE_CHAN, CMD_ACCESS_RIGHTS = 18, 22
ANY_SIZE = -1
#: The requests a parser may leave as :class:`Hot` (command -> its only payload size).
HOT_SIZES = {CMD_EVENT_ADD: 16, CMD_EVENT_CANCEL: 0, CMD_READ_NOTIFY: 0,
             CMD_WRITE: ANY_SIZE, CMD_WRITE_NOTIFY: ANY_SIZE, CMD_CREATE_CHAN: ANY_SIZE}
_MASK = struct.Struct(">H")
_new = tuple.__new__  # a NamedTuple made without its generated __new__ (one call less)
_MASK_AT = HEADER_SIZE + 12  # EVENT_ADD's payload: low, high, to (floats), mask, pad


class Hot(NamedTuple):
    """An EVENT_ADD, EVENT_CANCEL, READ_NOTIFY, WRITE, WRITE_NOTIFY or CREATE_CHAN
    request read from its bytes, with the attribute names of caproto's command (see
    :mod:`.hotlane`). A CREATE_CHAN's ``sid`` is the client's cid, its ``ident``
    the client's protocol version (the header's two parameters)."""

    command: int
    data_type: int
    data_count: int
    sid: int
    ident: int  # the subscription id, or the I/O id of a read or write
    mask: int  # EVENT_ADD's event mask (0 for the others)
    raw: bytearray  # the whole message, for :meth:`full`
    cls: Any  # caproto's command class

    @property
    def subscriptionid(self) -> int:
        return self.ident

    @property
    def ioid(self) -> int:
        return self.ident

    def full(self) -> Any:
        """caproto's command object for this message."""
        header = MessageHeader.from_buffer_copy(self.raw)
        return self.cls.from_wire(header, memoryview(self.raw)[HEADER_SIZE:])


class CommandParser:
    """caproto command objects from a TCP byte stream, in linear time.

    caproto's ``VirtualCircuit.recv`` copies the rest of its buffer after every
    command, which is quadratic in the bytes received at once: most of the
    server's time when thousands of requests arrive together. Here the buffer
    is read at increasing offsets and only the incomplete tail is kept.
    Payloads stay zero-copy views of the buffer, which is never resized.
    """

    def __init__(self, role: Any) -> None:
        self._classes = Commands[role]
        self.pending = bytearray()  # an incomplete message kept for the next read

    def feed(self, data: bytes, hot: bool = False) -> list[Any]:
        """The complete commands in ``data`` (after what was pending); b'':
        disconnected. With ``hot``, well-formed requests of the kinds in
        :data:`HOT_SIZES` come as :class:`Hot` instead of caproto objects."""
        if not data:
            return [DISCONNECTED]
        buffer = self.pending + data if self.pending else bytearray(data)
        view = memoryview(buffer)
        commands: list[Any] = []
        append = commands.append
        unpack = HEADER.unpack_from
        hot_sizes: dict[int, int] = HOT_SIZES if hot else {}
        offset = 0
        length = len(buffer)
        while offset + HEADER_SIZE <= length:
            command, size, data_type, count, p1, p2 = unpack(buffer, offset)
            header_cls, header_size = MessageHeader, HEADER_SIZE
            if size == 0xFFFF and count == 0:  # an extended header
                if offset + EXTENDED_SIZE > length:
                    break
                header_cls, header_size = ExtendedMessageHeader, EXTENDED_SIZE
                end = offset + EXTENDED_SIZE + EXTENDED.unpack_from(
                    buffer, offset + HEADER_SIZE)[0]
            else:
                end = offset + HEADER_SIZE + size
                if end <= length and hot_sizes.get(command) in (size, ANY_SIZE):
                    mask = (_MASK.unpack_from(buffer, offset + _MASK_AT)[0]
                            if command == CMD_EVENT_ADD else 0)
                    append(_new(Hot, (command, data_type, count, p1, p2, mask,
                                      buffer[offset:end], self._classes[command])))
                    offset = end
                    continue
            if end > length:
                break
            append(self._command(command, header_cls.from_buffer_copy(buffer, offset),
                                 view[offset + header_size:end]))
            offset = end
        self.pending = bytearray(view[offset:]) if offset < length else bytearray()
        return commands

    def _command(self, command: int, header: Any, payload: memoryview) -> Any:
        """caproto's command object for one complete message."""
        try:
            cls = self._classes[command]
        except KeyError:
            raise RemoteProtocolError(
                f"Packet with bad command ID {hex(command)} was received") from None
        return cls.from_wire(header, payload)
