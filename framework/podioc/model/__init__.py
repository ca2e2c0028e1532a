"""The pure model: PV specs, live PV state, validation, alarms, devices and the IOC class.

Nothing here opens a socket or needs an event loop. Once the runtime binds an
IOC to its loop, changes made from other threads are applied on the loop's
thread (:mod:`.threads`).
"""

from .alarms import Alarm, AlarmState, Severity, Status
from .device import Device
from .factory import pv
from .hooks import scan, shutdown, startup
from .ioc import IOC
from .kinds import Kind
from .members import DeviceSpec, DeviceVector, VectorSpec
from .spec import PVSpec
from .state import PV

__all__ = ["IOC", "PV", "Alarm", "AlarmState", "Device", "DeviceSpec", "DeviceVector",
           "Kind", "PVSpec", "Severity", "Status", "VectorSpec", "pv", "scan", "shutdown",
           "startup"]
