"""``podioc describe``."""

from __future__ import annotations

import json

import click

from ..config.target import resolve
from ..diagnostics.describe import describe_instance, format_table
from ..errors import PodiocError
from .common import TARGET_HELP, fail, target_options


@click.command(epilog=TARGET_HELP)
@target_options
@click.option("--json", "as_json", is_flag=True, envvar="PODIOC_JSON", show_envvar=True,
              help="Print the stable JSON format (see README) instead of a table.")
@click.option("--startup", "run_startup", is_flag=True, envvar="PODIOC_DESCRIBE_STARTUP",
              show_envvar=True,
              help="Also run the IOC's @startup hooks (then its @shutdown hooks), so PVs they "
                   "add are listed; the hooks may talk to the device.")
def describe(target: str, prefix: str | None, as_json: bool, run_startup: bool) -> None:
    """List every PV of TARGET with its type, writability, units, limits and states,
    and its tree of sub-devices.

    Nothing is served; the IOC class is only instantiated (and with --startup,
    its startup hooks run).
    """
    try:
        cfg, cls = resolve(target, prefix)
        doc = describe_instance(cfg, cls, run_startup=run_startup)
    except PodiocError as exc:
        raise fail(exc) from None
    click.echo(json.dumps(doc, indent=2) if as_json else format_table(doc))
