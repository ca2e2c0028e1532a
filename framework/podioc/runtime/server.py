"""One asyncio loop hosting the CA server, the PVA server, scans and hooks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ..limits import fds
from ..limits.budget import ChannelBudget
from ..limits.resources import Limits
from ..model import IOC
from ..util.tasks import watch
from .health import RESTART_EXIT_CODE, Health
from .iocstats import HealthSettings
from .scans import run_scan
from .settings import Settings

if TYPE_CHECKING:  # both import pydantic (config blocks): not needed to serve
    from ..access.policy import AccessPolicy
    from ..autosave.service import Autosave
    from ..putlog import PutLog

log = logging.getLogger(__name__)

#: The cyclic garbage collector's thresholds while the IOC serves (CPython's:
#: 700, 10, 10). Each request allocates a few objects that reference counting
#: frees; at 700 the young generation was collected ~1,500 times in one run of
#: EPICS base's catime (10,000 PVs, all connected once before), with 7 full
#: collections of ~60 ms each. With these: ~250 young and 1 full collection,
#: and the collector's share of that run 0.53 -> 0.16 s.
GC_THRESHOLDS = (10_000, 10, 10)


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
    #: ENGINEER, LOCATION and who may write SYSRESET (the config's ``health:`` block)
    health_settings: HealthSettings = field(default_factory=HealthSettings)
    autosave: Autosave | None = None
    #: builds the access policy, ``access(ioc)``, once every PV exists; called with
    #: ``early=True`` before the startup hooks to fail fast (None: no access rules)
    access: Callable[..., AccessPolicy | None] | None = None
    limits: Limits = field(default_factory=Limits)
    #: re-broadcast unicast CA searches to the node's other servers (PODIOC_CA_SEARCH_FANOUT)
    ca_search_fanout: bool = True
    policy: AccessPolicy | None = None
    #: last segment of the PVI PV names served over PVA (None: no PVI)
    pvi: str | None = "PVI"
    #: what the IOC is, for people (the PVI PV's display.description)
    description: str = ""
    endpoints: Endpoints = field(default_factory=lambda: Endpoints())
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    budget: ChannelBudget | None = None
    #: what ``podioc run`` exits with: 0, or RESTART_EXIT_CODE after a SYSRESET put
    exit_code: int = 0
    #: every client put, accepted or refused, on both protocols (None: not logged)
    putlog: PutLog | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Start everything, wait for ``stop``, then stop everything."""
        # From here on, IOC code in other threads changes PVs on this loop's thread.
        self.ioc.bind_loop(asyncio.get_running_loop())
        health = Health(self.ioc, self.health_settings,
                        access_rules=self.access is not None) if self.health else None
        if health is not None:
            health.on_reset = partial(self._restart, stop)
        if self.autosave is not None:
            # its status PVs join the health PVs; restore before startup hooks and servers
            self.autosave.attach(self.ioc, health, defer_unknown=True)
        if self.access is not None:  # a bad rules file fails start-up here, before hooks
            self.access(self.ioc, early=True)
        # Parents first; a hook may add PVs and sub-devices, whose hooks run too.
        for device in self.ioc.devices():
            for method, _ in device.own_methods("startup"):
                await method()
        # PVs that startup hooks added are restored, access-controlled and counted too
        if self.autosave is not None:
            self.autosave.adopt(self.ioc)
        if self.access is not None:
            self.policy = self.access(self.ioc)
        if health is not None:
            health.recount()
            health.set_start_count(
                self.autosave.count_start() if self.autosave is not None else None)
        self.ioc.seal()  # from here on, adding a PV raises AlreadyServingError
        self._size_limits()
        pva_server = pva_cap = ca_ctx = None
        if self.putlog is not None:
            self.putlog.start()
        thresholds = gc.get_threshold()  # restored when the IOC stops
        try:
            if "ca" in self.protocols:
                ca_ctx = await self._start_ca()
            if "pva" in self.protocols:
                pva_server, pva_cap = self._start_pva()
            if health is not None:
                # The CA context keeps its circuits; the PVA guard lists the sockets
                # anyway: neither count is taken twice.
                if ca_ctx is not None:
                    health.ca_clients = lambda: len(ca_ctx.circuits)
                    health.ca_channels = ca_ctx.channel_count
                if pva_cap is not None:
                    health.pva_clients = lambda: pva_cap.count
                    health.pva_channels = pva_cap.channel_count
                self._spawn(health.run(), "health")
            for device in self.ioc.devices():
                for method, period in device.own_methods("scan"):
                    label = f"{device.path}.{method.__name__}" if device.path else (
                        method.__name__)
                    self._spawn(run_scan(label, method, period), label)
            if self.autosave is not None:
                self._spawn(self.autosave.run(), "autosave")
            log.info("serving %d PVs (prefix %r): CA port %s, PVA port %s",
                     len(self.ioc.pvs), self.ioc.prefix, self.endpoints.ca_port,
                     self.endpoints.pva_port)
            # Everything built so far lives as long as the IOC: keep the cyclic
            # garbage collector from scanning it again and again.
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            self.ready.set()
            await stop.wait()
            log.info("stopping: puts closed, running shutdown hooks")
        finally:
            for live in self.ioc:
                live.close_puts()
            if self.autosave is not None:  # the operator's last settings, before hooks
                await self.autosave.stop()
            # Sub-devices before the devices they belong to; the IOC's own last.
            for device in reversed(list(self.ioc.devices())):
                for method, _ in device.own_methods("shutdown"):
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
            if self.putlog is not None:  # after the servers: the last refusals too
                await self.putlog.close()
            gc.set_threshold(*thresholds)
            log.info("stopped")

    def _restart(self, stop: asyncio.Event) -> None:
        """SYSRESET: shut down as on SIGTERM, then exit with RESTART_EXIT_CODE."""
        self.exit_code = RESTART_EXIT_CODE
        # after this put's reply has gone out: the hook runs before it is sent
        asyncio.get_running_loop().call_soon(stop.set)

    def _size_limits(self) -> None:
        """Raise the open-file limit, fit the client caps under it, make the budget."""
        soft, hard = fds.raise_nofile()
        fds.quiet_accept_exhaustion(asyncio.get_running_loop())
        protocols = len([p for p in self.protocols if p in ("ca", "pva")]) or 1
        plan = fds.plan(self.limits.max_clients, self.limits.fd_reserve, protocols, soft, hard,
                        fds.open_fds())
        log.info("%s", plan.describe(self.limits.max_clients, protocols))
        self.limits = replace(self.limits, max_clients=plan.per_protocol)
        self.budget = ChannelBudget(self.limits.channel_budget(len(self.ioc.pvs)))

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = watch(asyncio.get_running_loop().create_task(coro, name=name))
        self._tasks.append(task)
        return task

    async def _start_ca(self) -> Any:
        from ..protocols.ca import ServerContext, make_pvdb

        # caproto reads its settings from os.environ; give it exactly ours.
        os.environ.update(self.settings.caproto_env())
        interfaces = list(self.settings.ca_intf_addrs) or ["0.0.0.0"]
        ctx = ServerContext(make_pvdb(self.ioc.pvs), interfaces, pvs=self.ioc.pvs.values(),
                            limits=self.limits, policy=self.policy,
                            search_fanout=self.ca_search_fanout,
                            channel_budget=self.budget, putlog=self.putlog)
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
        return ctx

    def _start_pva(self) -> tuple[Any, Any]:
        # the package first: it keeps p4p's import from loading setuptools
        from ..protocols.pva import access as pva_access
        from ..protocols.pva.channels import make_providers, make_server
        from ..protocols.pva.connections import ConnectionGuard
        from ..protocols.pva.fields import make_field_provider

        guard = ConnectionGuard(
            None, 0, max_clients=self.limits.max_clients,
            max_buffer=self.limits.pva_max_buffer(self.ioc.pvs.values()),
            dead_peer_timeout=self.limits.dead_peer_timeout)
        providers = make_providers(self.ioc.pvs, pva_access.put_guard(self.policy),
                                   self.putlog)
        if self.pvi is not None:
            from ..protocols.pva.pvi import make_pvi

            doc = (type(self.ioc).__doc__ or "").strip().splitlines()
            providers.add(make_pvi(self.ioc.prefix, self.ioc.pvs, self.pvi,
                                      self.description or (doc[0] if doc else "")))
        extras = self.ioc.pva_extras()
        clash = sorted(set(extras) & set(providers))
        if clash:
            raise ValueError(f"{type(self.ioc).__name__}.pva_extras: {', '.join(clash)} "
                             "already served as PVs; give the extra channels other names")
        providers.add(extras)
        provider = pva_access.make_provider(providers, self.policy, self.budget,
                                            guard.channel_made)
        # <PV>.<FIELD>, made on first use
        fields = make_field_provider(self.ioc.pvs, providers, pva_access.put_guard(self.policy),
                                     self.putlog)
        server = make_server([provider, fields], self.settings.pva_conf())
        server.podioc_provider = provider  # p4p holds providers weakly
        server.podioc_fields = fields
        conf = server.conf()
        self.endpoints.pva_port = int(conf["EPICS_PVAS_SERVER_PORT"])
        self.endpoints.pva_broadcast_port = int(conf["EPICS_PVAS_BROADCAST_PORT"])
        guard.server, guard.port = server, self.endpoints.pva_port
        if self.budget is not None:
            self.budget.register("pva", guard.channel_count)
        self._spawn(guard.run(), "pva-connection-guard")
        return server, guard
