"""Health PVs every IOC serves under its prefix: the iocStats names (:mod:`.iocstats`)
and podioc's own, updated once a second.

Services add PVs that show their own state with :meth:`Health.add` (autosave
adds AUTOSAVE_STATUS and AUTOSAVE_LAST_SAVE, see :mod:`podioc.autosave.service`).
A put of a non-zero value to SYSRESET calls :attr:`Health.on_reset` (the
runtime shuts down and exits with :data:`RESTART_EXIT_CODE`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

import numpy as np

from .._version import __version__
from ..limits import fds
from ..model import IOC, PV, PVSpec, pv
from . import sysinfo
from .iocstats import HEARTBEAT_WRAP, HealthSettings, iocstats_specs, tod_text, uptime_text

#: ``podioc run``'s exit code after a SYSRESET put (EX_TEMPFAIL: "try again"), so
#: a container runtime restarts the IOC (Kubernetes always; Docker ``on-failure``).
RESTART_EXIT_CODE = 75

#: podioc's own health PVs, besides the iocStats names.
OWN_SPECS: dict[str, PVSpec] = {
    "UPTIME_S": pv.float(0.0, name="UPTIME_S", units="s", precision=0,
                         description="Seconds since start"),
    "START_TOD": pv.string("", name="START_TOD", description="Start time (UTC)"),
    "VERSION": pv.string(f"podioc {__version__}", name="VERSION",
                         description="Framework version"),
    "PV_COUNT": pv.int(0, name="PV_COUNT", description="PVs served"),
    "CA_CLIENTS": pv.int(0, name="CA_CLIENTS", description="Connected CA clients"),
    "PVA_CLIENTS": pv.int(0, name="PVA_CLIENTS", description="Connected PVA clients"),
    "PVA_CHANNELS": pv.int(0, name="PVA_CHANNELS", description="Open PVA channels"),
    "RSS": pv.float(0.0, name="RSS", units="MiB", precision=1,
                    description="Resident memory"),
}
#: PV name suffix -> spec of every health PV (SYSRESET read-only here; see Health).
HEALTH_SPECS: dict[str, PVSpec] = {**iocstats_specs(False), **OWN_SPECS}

Count = Callable[[], int]

log = logging.getLogger(__name__)


class Health:
    """Adds the health PVs to an IOC and updates them once a second.

    ``access_rules``: whether access rules are configured (with the default
    ``sysreset: rules`` SYSRESET takes puts only then).
    """

    def __init__(self, ioc: IOC, settings: HealthSettings | None = None, *,
                 access_rules: bool = False) -> None:
        self._ioc = ioc
        settings = settings or HealthSettings()
        specs = {**iocstats_specs(settings.sysreset_writable(access_rules)), **OWN_SPECS}
        self.pvs: dict[str, PV] = {key: ioc.add_pv(spec, f"_health_{key}")
                                   for key, spec in specs.items()}
        self._start = time.time()
        self._memory: sysinfo.MemoryReader | None = None  # opened on the first tick
        self._cpu: sysinfo.CpuLoad | None = None
        p = self.pvs
        p["START_TOD"].set(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self._start)))
        p["STARTTOD"].set(tod_text(self._start))
        p["TOD"].set(tod_text(self._start))
        p["UPTIME"].set(uptime_text(0))
        p["START_CNT"].set(1)
        p["HOSTNAME"].set(sysinfo.fit(socket.gethostname()))
        p["KERNEL_VERS"].set(sysinfo.kernel_version())
        p["EPICS_VERS"].set(sysinfo.software_version())
        p["ENGINEER"].set(sysinfo.fit(settings.engineer))
        p["LOCATION"].set(sysinfo.fit(settings.location))
        app_dir = os.getcwd().encode()[:p["APP_DIR"].spec.max_length]
        p["APP_DIR"].set(np.frombuffer(app_dir, dtype=np.uint8))
        p["SYSRESET"].on_put(self._sysreset)
        self.recount()
        #: Client and channel counts, supplied by the servers that keep them
        #: (0 when not serving).
        self.ca_clients: Count = lambda: 0
        self.ca_channels: Count = lambda: 0
        self.pva_clients: Count = lambda: 0
        self.pva_channels: Count = lambda: 0
        #: Called on a SYSRESET put of a non-zero value (None: nothing happens).
        self.on_reset: Callable[[], None] | None = None

    def add(self, spec: PVSpec) -> PV:
        """Serve ``spec`` as one more health PV, ``prefix + spec.name``, after those
        added so far; PV_COUNT includes it. Call before serving starts."""
        if spec.name is None:
            raise ValueError("a health PV spec needs name=...")
        live = self._ioc.add_pv(spec, f"_health_{spec.name}")
        self.pvs[spec.name] = live
        self.recount()
        return live

    def recount(self) -> None:
        """Show the number of PVs served now in PV_COUNT and RECORD_CNT (after startup
        hooks added some)."""
        self.pvs["PV_COUNT"].set(len(self._ioc.pvs))
        self.pvs["RECORD_CNT"].set(len(self._ioc.pvs))

    def set_start_count(self, count: int | None) -> None:
        """START_CNT: this start's number (None: not counted, shown as 1)."""
        self.pvs["START_CNT"].set(count or 1)

    async def _sysreset(self, value: float) -> None:
        if value and self.on_reset is not None:
            log.warning("SYSRESET: restarting (clean shutdown, then exit code %d)",
                        RESTART_EXIT_CODE)
            self.on_reset()

    def update(self) -> None:
        """One tick: heartbeat, time, uptime, clients, memory, CPU, descriptors."""
        p = self.pvs
        now = time.time()
        beat = p["HEARTBEAT"].raw + 1
        p["HEARTBEAT"].set(beat if beat <= HEARTBEAT_WRAP else 1)
        p["TOD"].set(tod_text(now))
        p["UPTIME"].set(uptime_text(now - self._start))
        p["UPTIME_S"].set(round(now - self._start))
        ca_clients = self.ca_clients()
        for key, value in (("CA_CLIENTS", ca_clients), ("CA_CLNT_CNT", ca_clients),
                           ("CA_CONN_CNT", self.ca_channels()),
                           ("PVA_CLIENTS", self.pva_clients()),
                           ("PVA_CHANNELS", self.pva_channels())):
            _post(p[key], value)
        if self._memory is None:
            self._memory = sysinfo.MemoryReader()
        mem = self._memory.read()
        _post(p["RSS"], round(mem.used / 2**20, 1))
        for key, value in (("MEM_USED", mem.used), ("MEM_FREE", mem.free),
                           ("MEM_MAX", mem.total)):
            _post(p[key], value)
        fd_max, fd_cnt = sysinfo.fd_max(), fds.open_fds()
        for key, value in (("FD_MAX", fd_max), ("FD_CNT", fd_cnt),
                           ("FD_FREE", max(0, fd_max - fd_cnt))):
            _post(p[key], value)
        if self._cpu is None:  # the first reading starts the interval: no figure yet
            self._cpu = sysinfo.CpuLoad()
        else:
            _post(p["IOC_CPU_LOAD"], round(self._cpu.ioc(), 1))
            _post(p["SYS_CPU_LOAD"], round(self._cpu.system(), 1))

    async def run(self) -> None:
        """Update every second, on the second boundary of the start time."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        try:
            while True:
                try:
                    self.update()
                except OSError as exc:  # e.g. no descriptor left for /proc
                    log.warning("health update skipped: %s", exc)
                next_tick += 1.0
                await asyncio.sleep(max(0.0, next_tick - loop.time()))
        finally:
            self.close()

    def close(self) -> None:
        """Close the files the ticks read (the next tick opens them again)."""
        for reader in (self._memory, self._cpu):
            if reader is not None:
                reader.close()
        self._memory = self._cpu = None


def _post(live: PV, value: float) -> None:
    """Set ``live`` only when the value changed (no update for subscribers otherwise)."""
    if value != live.raw:
        live.set(value)
