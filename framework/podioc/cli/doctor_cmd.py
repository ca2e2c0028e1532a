"""``podioc doctor``."""

from __future__ import annotations

import os

import click

from ..errors import PodiocError
from .common import cli, fail


@click.command()
@click.argument("config", required=False, envvar="PODIOC_TARGET")
@click.option("--json", "as_json", is_flag=True, envvar="PODIOC_JSON", show_envvar=True,
              help="Print the JSON report (format 1) instead of text.")
def doctor(config: str | None, as_json: bool) -> None:
    """Check whether beamline clients can find an IOC started here; explain why not.

    Run it where the IOC runs: on the node, in the pod (kubectl exec), in the
    container. Reports the interfaces and their broadcast addresses, the
    effective EPICS_* settings (CONFIG's epics: block, if given, overridden by
    the environment, as in podioc run), where the IOC will listen and send
    beacons, whether the default CA/PVA ports are free, whether this looks like
    a pod without host networking, and misconfigurations. Exits 1 if any check
    FAILs.
    """
    from .. import config as config_mod
    from ..diagnostics.doctor import diagnose, to_json_text

    config_env: dict[str, str] = {}
    source = "<environment>"
    try:
        if config and config_mod.is_config_path(config):
            cfg = config_mod.load(config)
            config_env = dict(cfg.epics)
            source = f"{cfg.source} / environment"
        report = diagnose(os.environ, config_env=config_env, source=source)
    except PodiocError as exc:
        raise fail(exc) from None
    click.echo(to_json_text(report) if as_json else report.format_text())
    if report.verdict == "FAIL":
        raise SystemExit(1)


cli.add_command(doctor)
