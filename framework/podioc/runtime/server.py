"""One asyncio loop hosting the CA server, the PVA server, scans and hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from ..model import IOC
from .health import Health
from .scans import run_scan
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Endpoints:
    """Where the servers actually listen (ports may differ from those asked for)."""

    ca_port: int | None = None
    pva_port: int | None = None
    pva_broadcast_port: int | None = None


@dataclass
class Runtime:
    """Serve one IOC instance until ``stop`` is set, then shut down cleanly."""

    ioc: IOC
    settings: Settings
    protocols: tuple[str, ...] = ("ca", "pva")
    health: bool = True
    endpoints: Endpoints = field(default_factory=lambda: Endpoints())
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Start everything, wait for ``stop``, then stop everything."""
        health = Health(self.ioc) if self.health else None
        for method, _ in self.ioc.methods("startup"):
            await method()
        pva_server = None
        try:
            if "ca" in self.protocols:
                await self._start_ca()
            if "pva" in self.protocols:
                pva_server = self._start_pva()
            if health is not None:
                health.ca_port = lambda: self.endpoints.ca_port
                health.pva_port = lambda: self.endpoints.pva_port
                self._spawn(health.run(), "health")
            for method, period in self.ioc.methods("scan"):
                self._spawn(run_scan(method.__name__, method, period), method.__name__)
            log.info("serving %d PVs (prefix %r): CA port %s, PVA port %s",
                     len(self.ioc.pvs), self.ioc.prefix, self.endpoints.ca_port,
                     self.endpoints.pva_port)
            self.ready.set()
            await stop.wait()
            log.info("stopping: puts closed, running shutdown hooks")
        finally:
            for live in self.ioc:
                live.close_puts()
            for method, _ in self.ioc.methods("shutdown"):
                try:
                    await method()
                except Exception:
                    log.exception("shutdown hook %s failed", method.__name__)
            for task in reversed(self._tasks):
                task.cancel()
            for task in reversed(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if pva_server is not None:
                pva_server.stop()
            log.info("stopped")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def _start_ca(self) -> None:
        from ..protocols.ca import make_pvdb
        from ..protocols.ca_server import Context

        # caproto reads its settings from os.environ; give it exactly ours.
        os.environ.update(self.settings.caproto_env())
        interfaces = list(self.settings.ca_intf_addrs) or ["0.0.0.0"]
        ctx = Context(make_pvdb(self.ioc.pvs), interfaces)
        bound = asyncio.Event()

        async def on_bound(_async_lib: Any) -> None:
            bound.set()

        task = self._spawn(ctx.run(startup_hook=on_bound), "ca-server")
        waiter = asyncio.ensure_future(bound.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()  # raises the bind error
        self.endpoints.ca_port = ctx.port
        if ctx.port != self.settings.ca_server_port and self.settings.ca_server_port:
            log.warning("CA TCP port %d is taken; serving on port %d (clients find it by "
                        "search, as with any EPICS server)", self.settings.ca_server_port,
                        ctx.port)

    def _start_pva(self) -> Any:
        from p4p.server import Server

        from ..protocols.pva import make_providers

        providers = make_providers(self.ioc.pvs)
        server = Server(providers=[providers], conf=self.settings.pva_conf(), useenv=False)
        conf = server.conf()
        self.endpoints.pva_port = int(conf["EPICS_PVAS_SERVER_PORT"])
        self.endpoints.pva_broadcast_port = int(conf["EPICS_PVAS_BROADCAST_PORT"])
        return server
