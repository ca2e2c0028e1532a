"""Build and run an IOC instance from a config: the body of ``podioc run``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from functools import partial
from typing import Any

from ..access import policy_for
from ..autosave.service import Autosave
from ..config import InstanceConfig
from ..config.epicsvars import parse_yes_no
from ..limits import stderr
from ..limits.resources import Limits
from ..model import IOC
from ..putlog import PutLog, PutLogSettings
from ..util.tasks import watch
from .iocstats import HealthSettings
from .server import Runtime
from .settings import Settings

log = logging.getLogger(__name__)


def build(cfg: InstanceConfig, cls: type[IOC],
          environ: Mapping[str, str] | None = None) -> tuple[IOC, Settings]:
    """Instantiate the IOC and read the effective settings (config, then environment)."""
    env = dict(cfg.epics)
    env.update({k: v for k, v in (os.environ if environ is None else environ).items()
                if k.startswith("EPICS_")})
    settings = Settings.from_env(env, source=f"{cfg.source} / environment")
    ioc = cls.create(cfg.prefix, cfg.args, cfg.source)
    return ioc, settings


async def serve(cfg: InstanceConfig, cls: type[IOC]) -> int:
    """Serve until SIGTERM/SIGINT (or a SYSRESET put); a second signal forces an
    immediate exit. Returns the exit code: 0, or RESTART_EXIT_CODE after SYSRESET.

    Standard error is rate-limited from here on (:mod:`podioc.limits.stderr`):
    C libraries (pvxs) print to it directly."""
    ioc, settings = build(cfg, cls)
    putlog = PutLog.from_settings(PutLogSettings.from_config(cfg.put_log, cfg.source,
                                                             cfg.base_dir))
    stderr.capture()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received: shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    runtime = Runtime(ioc, settings, cfg.protocols, cfg.health,
                      health_settings=HealthSettings.from_config(cfg.health_block, os.environ),
                      autosave=Autosave.from_config(cfg, os.environ),
                      access=partial(policy_for, cfg) if cfg.access else None,
                      limits=Limits.from_env(os.environ, settings.ca_max_array_bytes,
                                             ca_conn_tmo=settings.ca_conn_tmo),
                      ca_search_fanout=parse_yes_no(
                          "PODIOC_CA_SEARCH_FANOUT", os.environ.get("PODIOC_CA_SEARCH_FANOUT"),
                          True),
                      pvi=cfg.pvi, description=cfg.description, putlog=putlog)
    loop.add_signal_handler(signal.SIGHUP, _on_hangup, runtime, set())
    await runtime.run(stop)
    return runtime.exit_code


def _on_hangup(runtime: Runtime, tasks: set[asyncio.Task[Any]]) -> None:
    """SIGHUP: reload the access rules without dropping clients."""
    if runtime.policy is None:
        log.info("SIGHUP received: no access rules configured, nothing to reload")
        return
    log.info("SIGHUP received: reloading the access rules")
    task = watch(asyncio.get_running_loop().create_task(runtime.policy.reload()),
                 "reloading the access rules")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
