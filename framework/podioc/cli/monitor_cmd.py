"""``podioc monitor``."""

from __future__ import annotations

import asyncio

import click

from ..errors import PodiocError
from .common import cli, fail


@cli.command()
@click.argument("prefix", envvar="PODIOC_PREFIX")
@click.option("--pvi", default="PVI", show_default=True, envvar="PODIOC_PVI", show_envvar=True,
              help="Last segment of the IOC's PVI PV names (its config's pvi.name).")
@click.option("--timeout", type=float, default=5.0, show_default=True,
              help="Seconds to wait for the PVI PV.")
def monitor(prefix: str, pvi: str, timeout: float) -> None:
    """Live view of the IOC serving PREFIX, found over PVA from its PVI PV (PREFIX:PVI).

    A table of every PV with value, units, alarm severity, timestamp and update
    rate. Keys: / filter by name, p put a value to the selected PV (writable ones
    are marked *), Esc cancel, q quit. PVA settings come from EPICS_PVA_*.
    """
    try:
        from p4p.client.asyncio import Context

        from ..diagnostics.monitor import discover
        from ..diagnostics.monitor_view import MonitorApp
    except ImportError as exc:
        raise click.ClickException(
            f"podioc monitor needs the 'textual' package ({exc}): install podioc[monitor]"
        ) from None

    async def find() -> dict[str, bool]:
        ctx = Context("pva", nt=False)
        try:
            return await discover(ctx, prefix, pvi, timeout)
        finally:
            ctx.close()

    try:
        pvs = asyncio.run(find())
    except PodiocError as exc:
        raise fail(exc) from None
    MonitorApp(prefix, pvs, None).run()
