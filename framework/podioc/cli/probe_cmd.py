"""``podioc probe``."""

from __future__ import annotations

import os

import click

from ..config import is_config_path
from ..config import load as load_config
from ..diagnostics.probe import ProbeFailed
from ..diagnostics.probe import probe as run_probe
from ..errors import PodiocError
from ..runtime.settings import Settings
from .common import fail


@click.command()
@click.argument("prefix", envvar="PODIOC_PREFIX", required=False)
@click.option("--config", "config_path", envvar="PODIOC_TARGET", show_envvar=True, default=None,
              help="Instance config of the IOC: supplies PREFIX when not given and the "
                   "epics: settings (the environment still wins).")
@click.option("--protocol", type=click.Choice(["ca", "pva"]), default="ca",
              envvar="PODIOC_PROBE_PROTOCOL", show_envvar=True, help="Protocol to probe over.")
@click.option("--ready", is_flag=True, envvar="PODIOC_PROBE_READY", show_envvar=True,
              help="Only check that PVs are served (readiness), not that the heartbeat advances.")
@click.option("--timeout", type=float, default=5.0, envvar="PODIOC_PROBE_TIMEOUT",
              show_envvar=True, help="Seconds before giving up.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def probe(prefix: str | None, config_path: str | None, protocol: str, ready: bool,
          timeout: float, quiet: bool) -> None:
    """Check that the IOC with PREFIX on this host is alive; exit 1 if not.

    Reads PREFIX + HEARTBEAT (and, unless --ready, waits up to --timeout for it
    to advance, proving the IOC's event loop runs). Searches where an IOC with
    the same EPICS_* server settings listens, so it works as a Kubernetes
    liveness/readiness exec probe or a Docker HEALTHCHECK inside the IOC's
    own environment.
    """
    try:
        env: dict[str, str] = {}
        if config_path and is_config_path(config_path):
            cfg = load_config(config_path)
            env.update(cfg.epics)
            prefix = cfg.prefix if prefix is None else prefix
        if prefix is None:
            raise click.UsageError("give PREFIX (or PODIOC_PREFIX, or --config/PODIOC_TARGET)")
        env.update(os.environ)
        settings = Settings.from_env(env)
        result = run_probe(prefix, settings, protocol, ready_only=ready, timeout=timeout)
    except ProbeFailed as exc:
        click.echo(f"probe failed: {exc}", err=True)
        raise SystemExit(1) from None
    except PodiocError as exc:
        raise fail(exc) from None
    if not quiet:
        state = "ready" if ready else f"alive (heartbeat {result.first} -> {result.last})"
        click.echo(f"{prefix} {state} over {protocol.upper()} in {result.elapsed:.2f} s")
