"""podioc: declarative Python EPICS soft IOCs served over Channel Access and PVAccess."""

from ._version import __version__
from .errors import ConfigError, IOCDefinitionError, PodiocError, PutRefused
from .model import IOC, PV, Alarm, Severity, Status, pv, scan, shutdown, startup

__all__ = ["IOC", "PV", "Alarm", "ConfigError", "IOCDefinitionError", "PodiocError",
           "PutRefused", "Severity", "Status", "__version__", "pv", "scan", "shutdown",
           "startup"]
