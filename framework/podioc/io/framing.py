"""Cutting a byte stream into messages: by terminator or by fixed length.

A framing is pure (no I/O): :meth:`Framing.encode` turns a command into the
bytes to send and :meth:`Framing.split` takes every complete reply out of a
receive buffer. A stream that never delivers a frame boundary within
``max_frame`` bytes is garbage: :meth:`split` raises
:class:`~podioc.errors.DeviceProtocolError` and the connection resynchronises
by reconnecting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NoReturn

from ..errors import DeviceProtocolError

#: Default limit of one reply: longer means the terminator was lost (garbage).
MAX_FRAME = 65536


def _as_bytes(text: str | bytes, what: str) -> bytes:
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    if not data:
        raise ValueError(f"{what} must not be empty")
    return data


class Framing(ABC):
    """How commands are ended and replies are cut out of the stream."""

    max_frame: int

    @abstractmethod
    def encode(self, message: bytes) -> bytes:
        """The bytes to send for ``message`` (e.g. with the write terminator added)."""

    @abstractmethod
    def split(self, buffer: bytearray) -> list[bytes]:
        """Remove and return every complete frame at the start of ``buffer``."""


class Terminator(Framing):
    """Messages ended by a terminator, e.g. ``"\\r\\n"`` (replies) and ``"\\r"`` (commands).

    ``write`` defaults to ``read``. Replies are returned without the
    terminator; a reply longer than ``max_frame`` bytes raises
    :class:`~podioc.errors.DeviceProtocolError`.
    """

    def __init__(self, read: str | bytes = "\n", write: str | bytes | None = None, *,
                 max_frame: int = MAX_FRAME) -> None:
        self.read = _as_bytes(read, "the read terminator")
        self.write = self.read if write is None else _as_bytes(write, "the write terminator")
        if max_frame < 1:
            raise ValueError(f"max_frame={max_frame} must be at least 1")
        self.max_frame = max_frame

    def encode(self, message: bytes) -> bytes:
        return message + self.write

    def split(self, buffer: bytearray) -> list[bytes]:
        frames = []
        start = 0
        size = len(self.read)
        while (end := buffer.find(self.read, start)) >= 0:
            if end - start > self.max_frame:
                self._garbage(end - start)
            frames.append(bytes(buffer[start:end]))
            start = end + size
        del buffer[:start]
        if len(buffer) >= self.max_frame + size:  # even a split terminator would be found
            self._garbage(len(buffer))
        return frames

    def _garbage(self, length: int) -> NoReturn:
        raise DeviceProtocolError(
            f"garbage from the device: {length} bytes without the terminator "
            f"{self.read!r} (max_frame={self.max_frame})")

    def __repr__(self) -> str:
        return f"Terminator(read={self.read!r}, write={self.write!r})"


class FixedLength(Framing):
    """Replies of exactly ``size`` bytes; commands get ``write_terminator`` appended."""

    def __init__(self, size: int, write_terminator: str | bytes = b"") -> None:
        if size < 1:
            raise ValueError(f"FixedLength(size={size}): size must be at least 1")
        self.size = self.max_frame = size
        self.write = (write_terminator.encode("ascii") if isinstance(write_terminator, str)
                      else bytes(write_terminator))

    def encode(self, message: bytes) -> bytes:
        return message + self.write

    def split(self, buffer: bytearray) -> list[bytes]:
        count = len(buffer) // self.size
        frames = [bytes(buffer[i * self.size:(i + 1) * self.size]) for i in range(count)]
        del buffer[:count * self.size]
        return frames

    def __repr__(self) -> str:
        return f"FixedLength({self.size}, write_terminator={self.write!r})"


def framing_of(spec: Framing | str | bytes) -> Framing:
    """A :class:`Framing` from itself or a terminator (``"\\r\\n"``, ``b"\\x03"``)."""
    if isinstance(spec, Framing):
        return spec
    if isinstance(spec, str | bytes):
        return Terminator(spec)
    raise TypeError(f"framing={spec!r}: expected a terminator (str or bytes), "
                    "Terminator(...) or FixedLength(...)")
