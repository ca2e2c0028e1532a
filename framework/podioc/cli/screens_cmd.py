"""``podioc screens``."""

from __future__ import annotations

from pathlib import Path

import click

from ..config.load import is_config_path
from ..config.target import resolve
from ..diagnostics.describe import describe_instance
from ..diagnostics.screens import write_screens
from ..errors import PodiocError
from .common import TARGET_HELP, cli, fail


@cli.command(epilog=TARGET_HELP)
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory to write the .bob files into (created).")
@click.option("--prefix", envvar="PODIOC_PREFIX", show_envvar=True, default=None,
              help="PV prefix for every TARGET; overrides the instance configs' prefixes.")
def screens(targets: tuple[str, ...], out: Path, prefix: str | None) -> None:
    """Write a Phoebus screen (.bob) per TARGET, and index.bob when there are several.

    A screen is named after its instance config (demo.yaml: demo.bob), else after
    its IOC class.

    Nothing is served; each IOC class is only instantiated.
    """
    try:
        docs = []
        for target in targets:
            cfg, cls = resolve(target, prefix)
            name = cfg.name if is_config_path(target) else cls.__name__.lower()
            docs.append((name, describe_instance(cfg, cls)))
        written = write_screens(docs, out)
    except PodiocError as exc:
        raise fail(exc) from None
    for path in written:
        click.echo(str(path))
