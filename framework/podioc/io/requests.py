"""Text requests on top of byte requests: encoding, decoding and parsing replies."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ..errors import DeviceProtocolError
from .connection import Connection

T = TypeVar("T")


class RequestConnection(Connection):
    """A connection that answers requests: ``await conn.request("MEAS:VOLT?", parse=float)``.

    Subclasses implement :meth:`request_bytes`; text is encoded and decoded
    with ``encoding`` (``"ascii"`` unless given).
    """

    encoding: str = "ascii"
    #: seconds a request waits for its reply unless the call says otherwise
    timeout: float = 2.0

    @abstractmethod
    async def request_bytes(self, data: bytes, *, timeout: float | None = None) -> bytes:
        """Send ``data`` (framed) and return the reply's bytes (without framing)."""

    @overload
    async def request(self, command: str, *, timeout: float | None = None) -> str: ...

    @overload
    async def request(self, command: str, *, parse: Callable[[str], T],
                      timeout: float | None = None) -> T: ...

    async def request(self, command: str, *, parse: Callable[[str], Any] | None = None,
                      timeout: float | None = None) -> Any:
        """Send ``command``, return the reply as text, or ``parse(reply)`` if given.

        Raises :class:`~podioc.errors.DeviceNotConnected` at once while
        disconnected (or when the link drops while waiting),
        :class:`~podioc.errors.DeviceTimeout` when no reply comes within
        ``timeout`` s (default: the connection's ``timeout``) and
        :class:`~podioc.errors.DeviceProtocolError` for a reply that is not
        text in the connection's encoding or that ``parse`` refuses.
        """
        raw = await self.request_bytes(self.encode(command), timeout=timeout)
        try:
            reply = raw.decode(self.encoding)
        except UnicodeDecodeError:
            raise DeviceProtocolError(f"{self}: the reply to {command!r} is not {self.encoding} "
                                      f"text: {raw[:80]!r}") from None
        if parse is None:
            return reply
        try:
            return parse(reply)
        except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise DeviceProtocolError(f"{self}: cannot read the reply {reply[:80]!r} to "
                                      f"{command!r}: {exc}") from None

    def encode(self, command: str | bytes) -> bytes:
        """``command`` as bytes in the connection's encoding."""
        if isinstance(command, bytes):
            return command
        try:
            return command.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise ValueError(f"{self}: {command!r} cannot be sent in {self.encoding}: "
                             f"{exc.reason}") from None

    def decode(self, data: bytes) -> str:
        """``data`` as text (undecodable bytes replaced), for unsolicited messages."""
        return data.decode(self.encoding, errors="replace")
