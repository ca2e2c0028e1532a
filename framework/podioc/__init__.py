"""podioc: declarative Python EPICS soft IOCs served over Channel Access and PVAccess."""

from ._version import __version__
from .errors import AlreadyServingError, ConfigError, IOCDefinitionError, PodiocError, PutRefused
from .model import (
    IOC,
    PV,
    Alarm,
    Device,
    DeviceVector,
    PVSpec,
    Severity,
    Status,
    pv,
    scan,
    shutdown,
    startup,
)

__all__ = ["IOC", "PV", "Alarm", "AlreadyServingError", "ConfigError", "Device",
           "DeviceVector", "IOCDefinitionError", "PVSpec", "PodiocError", "PutRefused",
           "Severity", "Status", "__version__", "pv", "scan", "shutdown", "startup"]
