"""Device connections: TCP, serial and UDP clients that survive faults, and PVs that follow them.

- :class:`TcpConnection`, :class:`SerialConnection` (framing by terminator or
  fixed length) and :class:`UdpConnection`: ``await conn.request(cmd)``,
  one request in flight at a time, a timeout, reconnection with
  :class:`Backoff`.
- :class:`DeviceLink`: while the connection is down, its PVs are
  INVALID/COMM and puts to them are refused with "device not connected";
  on reconnect the values are re-read and the alarms clear.

Errors: :class:`~podioc.errors.DeviceNotConnected` (at once, while down),
:class:`~podioc.errors.DeviceTimeout`, :class:`~podioc.errors.DeviceProtocolError`,
all :class:`~podioc.errors.DeviceError` (an ``OSError``).
"""

from ..errors import DeviceError, DeviceNotConnected, DeviceProtocolError, DeviceTimeout
from .binding import DeviceLink
from .connection import Backoff, Connection
from .framing import FixedLength, Framing, Terminator
from .requests import RequestConnection
from .serialport import SerialConnection
from .stream import StreamConnection
from .tcp import TcpConnection
from .udp import UdpConnection

__all__ = ["Backoff", "Connection", "DeviceError", "DeviceLink", "DeviceNotConnected",
           "DeviceProtocolError", "DeviceTimeout", "FixedLength", "Framing",
           "RequestConnection", "SerialConnection", "StreamConnection", "TcpConnection",
           "Terminator", "UdpConnection"]
