"""The pure model: PV specs, live PV state, validation, alarms and the IOC base class.

Nothing here opens a socket or needs an event loop. Once the runtime binds an
IOC to its loop, changes made from other threads are applied on the loop's
thread (:mod:`.threads`).
"""

from .alarms import Alarm, AlarmState, Severity, Status
from .hooks import scan, shutdown, startup
from .ioc import IOC
from .kinds import Kind
from .spec import PVSpec, pv
from .state import PV

__all__ = ["IOC", "PV", "Alarm", "AlarmState", "Kind", "PVSpec", "Severity", "Status",
           "pv", "scan", "shutdown", "startup"]
