"""The iocStats-compatible health PVs: the names, record types, units and alarm
limits of iocAdmin's ``ioc.template`` (soft IOC), so dashboards and alarm
configs made for EPICS IOCs work unchanged.

Types follow the record types there: ai/calc/calcout/sub records are doubles
(DBR_DOUBLE), stringin records strings, APP_DIR a char waveform. What podioc
does differently is listed in the README ("Health PVs").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..model import PVSpec, pv

#: What iocStats shows where a value is unknown.
NOT_AVAILABLE = "<not available>"
#: iocAdminSoft's TODFORMAT for STARTTOD and TOD (local time).
TOD_FORMAT = "%m/%d/%Y %H:%M:%S"
#: APP_DIR's length, as in ioc.template (a char waveform).
APP_DIR_LENGTH = 160
#: HEARTBEAT counts up to this, then starts again at 1 (as iocStats' calcout).
HEARTBEAT_WRAP = 2**31 - 1
SYSRESET_MODES = ("rules", "open", "never")

_Alarm = pv.Alarm


def _count(name: str, description: str, **kw: Any) -> PVSpec[float]:
    return pv.float(0.0, name=name, description=description, precision=0, **kw)


def _load(name: str, description: str) -> PVSpec[float]:
    return pv.float(0.0, name=name, description=description, units="%", precision=1,
                    display_limits=(0, 100), alarm=_Alarm(high=70, hihi=80))


def _bytes(name: str, description: str) -> PVSpec[float]:
    return pv.float(0.0, name=name, description=description, units="byte", precision=0)


def iocstats_specs(sysreset_writable: bool) -> dict[str, PVSpec[Any]]:
    """PV name suffix -> spec of every iocStats name podioc serves, in ioc.template's order
    (SYSRESET writable or not, as :meth:`HealthSettings.sysreset_writable` decides)."""
    return {spec.name or "": spec for spec in (
        pv.string("", name="STARTTOD", description="Time and date of startup"),
        pv.string("", name="TOD", description="Current time and date"),
        _count("HEARTBEAT", "1 Hz counter since startup"),
        _count("START_CNT", "Increments at startup"),
        _count("SYSRESET", "IOC Restart", writable=sysreset_writable),
        _count("CA_CLNT_CNT", "Number of CA Clients", display_limits=(0, 200),
               alarm=_Alarm(high=100, hihi=175)),
        _count("CA_CONN_CNT", "Number of CA Connections", display_limits=(0, 5000),
               alarm=_Alarm(high=4000, hihi=4500)),
        _count("RECORD_CNT", "Number of Records"),
        _count("FD_MAX", "Max File Descriptors"),
        _count("FD_CNT", "Allocated File Descriptors"),
        _count("FD_FREE", "Available FDs", display_limits=(0, 150),
               alarm=_Alarm(lolo=5, low=20)),
        _load("SYS_CPU_LOAD", "System CPU Load"),
        _load("IOC_CPU_LOAD", "IOC CPU Load"),
        _bytes("MEM_USED", "Allocated Memory"),
        _bytes("MEM_FREE", "Free Memory"),
        _bytes("MEM_MAX", "Maximum Memory"),
        pv.string("", name="KERNEL_VERS", description="Kernel Version"),
        pv.string("", name="EPICS_VERS", description="EPICS Version"),
        pv.string("", name="HOSTNAME", description="Host Name"),
        pv.waveform(APP_DIR_LENGTH, dtype="uint8", name="APP_DIR",
                    description="Application Directory"),
        pv.string("", name="UPTIME", description="Elapsed Time since Start"),
        pv.string("", name="ENGINEER", description="Engineer"),
        pv.string("", name="LOCATION", description="Location"),
    )}


@dataclass(frozen=True)
class HealthSettings:
    """The ``health:`` block's settings and the environment, read once at start-up."""

    engineer: str = NOT_AVAILABLE
    location: str = NOT_AVAILABLE
    #: rules: writable when access rules exist (they decide); open: writable; never
    sysreset: str = "rules"

    def __post_init__(self) -> None:
        if self.sysreset not in SYSRESET_MODES:
            raise ValueError(f"sysreset {self.sysreset!r} is not one of {SYSRESET_MODES}")

    @classmethod
    def from_config(cls, block: Mapping[str, Any], env: Mapping[str, str]) -> HealthSettings:
        """ENGINEER and LOCATION as iocStats takes them (the environment variables of
        those names), else from the block; ENGINEER then falls back to the login name."""
        engineer = (env.get("ENGINEER") or block.get("engineer") or env.get("LOGNAME")
                    or env.get("USER") or NOT_AVAILABLE)
        location = env.get("LOCATION") or block.get("location") or NOT_AVAILABLE
        return cls(str(engineer), str(location), str(block.get("sysreset", "rules")))

    def sysreset_writable(self, access_rules: bool) -> bool:
        """Whether SYSRESET takes puts at all (access rules, when configured, still
        decide who may write)."""
        return self.sysreset == "open" or (self.sysreset == "rules" and access_rules)


def uptime_text(seconds: float) -> str:
    """UPTIME as iocStats writes it: ``01:02:03``, ``1 day, 01:02:03``, ``3 days, ...``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if days == 0:
        return clock
    return f"{days} day{'s' if days > 1 else ''}, {clock}"


def tod_text(when: float) -> str:
    """STARTTOD/TOD: local time in iocAdminSoft's format, ``12/06/2026 04:48:31``."""
    return time.strftime(TOD_FORMAT, time.localtime(when))
