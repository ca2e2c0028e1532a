"""``podioc run``."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType

import click

from ..config.target import resolve
from ..errors import PodiocError
from .common import TARGET_HELP, fail, target_options


@click.command(epilog=TARGET_HELP)
@target_options
@click.option("--protocols", envvar="PODIOC_PROTOCOLS", show_envvar=True, default=None,
              help="Comma-separated protocols to serve (ca, pva); overrides the config.")
def run(target: str, prefix: str | None, protocols: str | None) -> None:
    """Serve the IOC TARGET over CA and PVA until SIGINT or SIGTERM.

    EPICS server variables (EPICS_CA_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST,
    EPICS_CAS_BEACON_ADDR_LIST, EPICS_PVA_SERVER_PORT, EPICS_PVAS_INTF_ADDR_LIST,
    ...) are honoured; they override the instance config's epics: block.
    Autosave files go to PODIOC_AUTOSAVE_DIR (else the config's
    autosave.directory, else /var/lib/podioc/autosave when it exists).
    Exits 0 after a clean shutdown, 75 after one asked for by a put to the
    SYSRESET PV (so that a container runtime restarts the IOC).
    """
    # Until the event loop installs its handlers, SIGTERM (ignored by default
    # when the IOC is PID 1 in a container) ends start-up at once: nothing is
    # served yet, so there is nothing to shut down.
    signal.signal(signal.SIGTERM, _exit_before_serving)
    try:
        cfg, cls = resolve(target, prefix, protocols)
        from ..runtime.app import serve

        code = asyncio.run(serve(cfg, cls))
    except PodiocError as exc:
        raise fail(exc) from None
    sys.exit(code)


def _exit_before_serving(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)
