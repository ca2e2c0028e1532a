"""Health PVs every IOC serves under its prefix, in the spirit of devIocStats.

Services add PVs that show their own state with :meth:`Health.add` (autosave
adds AUTOSAVE_STATUS and AUTOSAVE_LAST_SAVE, see :mod:`podioc.autosave.service`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import psutil

from .._version import __version__
from ..model import IOC, PV, PVSpec, pv

#: PV name suffix -> spec. Names match devIocStats where one exists.
HEALTH_SPECS: dict[str, PVSpec] = {
    "HEARTBEAT": pv.int(0, name="HEARTBEAT", description="Counts up every second"),
    "UPTIME": pv.float(0.0, name="UPTIME", units="s", precision=0,
                       description="Seconds since start"),
    "START_TOD": pv.string("", name="START_TOD", description="Start time (UTC)"),
    "VERSION": pv.string(f"podioc {__version__}", name="VERSION",
                         description="Framework version"),
    "PV_COUNT": pv.int(0, name="PV_COUNT", description="PVs served"),
    "CA_CLIENTS": pv.int(0, name="CA_CLIENTS", description="Connected CA clients"),
    "PVA_CLIENTS": pv.int(0, name="PVA_CLIENTS", description="Connected PVA clients"),
    "RSS": pv.float(0.0, name="RSS", units="MiB", precision=1,
                    description="Resident memory"),
}

ClientCount = Callable[[], int]

log = logging.getLogger(__name__)


class Health:
    """Adds the health PVs to an IOC and updates them once a second."""

    def __init__(self, ioc: IOC) -> None:
        self._ioc = ioc
        self.pvs: dict[str, PV] = {key: ioc.add_pv(spec, f"_health_{key}")
                                   for key, spec in HEALTH_SPECS.items()}
        self._start = time.time()
        self._process = psutil.Process()
        self.pvs["START_TOD"].set(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self._start)))
        self.pvs["PV_COUNT"].set(len(ioc.pvs))
        #: Client counts, supplied by the servers that keep them (0 when not serving).
        self.ca_clients: ClientCount = lambda: 0
        self.pva_clients: ClientCount = lambda: 0

    def add(self, spec: PVSpec) -> PV:
        """Serve ``spec`` as one more health PV, ``prefix + spec.name``, after those
        added so far; PV_COUNT includes it. Call before serving starts."""
        if spec.name is None:
            raise ValueError("a health PV spec needs name=...")
        live = self._ioc.add_pv(spec, f"_health_{spec.name}")
        self.pvs[spec.name] = live
        self.pvs["PV_COUNT"].set(len(self._ioc.pvs))
        return live

    def recount(self) -> None:
        """Show the number of PVs served now in PV_COUNT (after startup hooks added some)."""
        self.pvs["PV_COUNT"].set(len(self._ioc.pvs))

    def update(self) -> None:
        """One tick: heartbeat, uptime, clients, memory."""
        p = self.pvs
        p["HEARTBEAT"].set((p["HEARTBEAT"].raw + 1) % 2**31)
        p["UPTIME"].set(round(time.time() - self._start))
        ca, pva = self.ca_clients(), self.pva_clients()
        if ca != p["CA_CLIENTS"].raw:
            p["CA_CLIENTS"].set(ca)
        if pva != p["PVA_CLIENTS"].raw:
            p["PVA_CLIENTS"].set(pva)
        rss = round(self._process.memory_info().rss / 2**20, 1)
        if rss != p["RSS"].raw:
            p["RSS"].set(rss)

    async def run(self) -> None:
        """Update every second, on the second boundary of the start time."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                self.update()
            except (OSError, psutil.Error) as exc:  # e.g. no descriptor left for /proc
                log.warning("health update skipped: %s", exc)
            next_tick += 1.0
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
