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
def describe(target: str, prefix: str | None, as_json: bool) -> None:
    """List every PV of TARGET with its type, writability, units, limits and states.

    Nothing is served; the IOC class is only instantiated.
    """
    try:
        cfg, cls = resolve(target, prefix)
        doc = describe_instance(cfg, cls)
    except PodiocError as exc:
        raise fail(exc) from None
    click.echo(json.dumps(doc, indent=2) if as_json else format_table(doc))
