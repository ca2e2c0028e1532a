"""``podioc build``, ``up``, ``down``, ``logs`` and ``ps``: images and local containers.

Thin: the work is in :mod:`podioc.deploy.image` (with its helpers ``engine``,
``buildcontext``, ``source`` and ``wheels``) and :mod:`podioc.deploy.containers`;
this module parses options and renders progress. Each option can also be set
by the ``PODIOC_*`` variable its help shows.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from .. import config as config_mod
from .._version import __version__
from ..config.target import resolve
from ..deploy import containers as ctr
from ..deploy.buildcontext import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_REPOSITORY,
    BuildOptions,
    check_ioc_dirs,
    git_remote_url,
    git_revision,
)
from ..deploy.engine import connect
from ..deploy.image import BuildEvent, build_image
from ..diagnostics.describe import describe_instance
from ..diagnostics.screens import screen_files
from ..errors import PodiocError
from .common import cli, fail

_DEFAULT_TAG = f"{DEFAULT_REPOSITORY}:{__version__}"


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        out[key] = value
    return out


class _Progress:
    """Renders build events: one line per step; on a terminal, a live status line."""

    def __init__(self, quiet: bool, verbose: bool) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.status_shown = False

    def _clear(self) -> None:
        if self.status_shown:
            click.echo("\r\x1b[2K", nl=False, err=True)
            self.status_shown = False

    def _width(self) -> int:
        return max(shutil.get_terminal_size((100, 20)).columns - 1, 20)

    def __call__(self, event: BuildEvent) -> None:
        if self.quiet:
            return
        elapsed = f"{time.monotonic() - self.started:6.1f}s"
        if event.kind == "phase":
            self._clear()
            click.echo(f"{elapsed} {click.style('==>', fg='cyan')} {event.text}", err=True)
        elif event.kind == "step":
            self._clear()
            line = f"{elapsed} [{event.step:>2}/{event.total}] {' '.join(event.text.split())}"
            click.echo(click.style(line[: self._width()], bold=True), err=True)
        elif event.kind == "output":
            if self.verbose:
                self._clear()
                click.echo(f"        {event.text}", err=True)
            elif self.tty and event.text.strip():
                text = f"        {' '.join(event.text.split())}"[: self._width()]
                click.echo("\r\x1b[2K" + click.style(text, dim=True), nl=False, err=True)
                self.status_shown = True

    def close(self) -> None:
        self._clear()


@click.command("build")
@click.argument("ioc_dirs", nargs=-1,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tag", "-t", envvar="PODIOC_IMAGE", show_envvar=True, default=_DEFAULT_TAG,
              help="Name of the image to make (NAME[:TAG]).")
@click.option("--base-image", envvar="PODIOC_BASE_IMAGE", show_envvar=True,
              default=DEFAULT_BASE_IMAGE,
              help="Image to build on: python3 >= 3.11 with its venv module.")
@click.option("--network", envvar="PODIOC_BUILD_NETWORK", show_envvar=True, default=None,
              help="Network of the build's RUN steps (e.g. host, none). Default: the "
                   "engine's; offline builds (--wheelhouse) need none.")
@click.option("--wheelhouse/--no-wheelhouse", envvar="PODIOC_BUILD_WHEELHOUSE",
              show_envvar=True, default=True,
              help="Fetch wheels for the base image's Python on this host and install only "
                   "those (no package index needed inside the build). --no-wheelhouse lets "
                   "pip reach an index from the build (with --network host).")
@click.option("--pull/--no-pull", envvar="PODIOC_BUILD_PULL", show_envvar=True, default=False,
              help="Pull a newer base image even when one is present locally (a missing "
                   "one is always pulled).")
@click.option("--no-cache", is_flag=True, envvar="PODIOC_BUILD_NO_CACHE", show_envvar=True,
              help="Do not reuse layers of earlier builds.")
@click.option("--label", "labels", multiple=True, envvar="PODIOC_BUILD_LABELS",
              show_envvar=True, metavar="KEY=VALUE", help="Extra image label (repeatable).")
@click.option("--source-url", envvar="PODIOC_BUILD_SOURCE_URL", show_envvar=True, default="",
              help="org.opencontainers.image.source (default: the git remote 'origin').")
@click.option("--revision", envvar="PODIOC_BUILD_REVISION", show_envvar=True, default="",
              help="org.opencontainers.image.revision (default: git HEAD of the first IOC "
                   "directory).")
@click.option("--screens/--no-screens", envvar="PODIOC_BUILD_SCREENS", show_envvar=True,
              default=True,
              help="Put the Phoebus screens of each directory's instance configs (podioc "
                   "screens) at /iocs/<directory>/screens/ (imports the IOC classes here; a "
                   "config that cannot be described gets a note and no screen).")
@click.option("--quiet", "-q", is_flag=True, envvar="PODIOC_BUILD_QUIET", show_envvar=True,
              help="No progress; print only the image id (for CI).")
@click.option("--verbose", "-v", is_flag=True, envvar="PODIOC_BUILD_VERBOSE", show_envvar=True,
              help="Show every line the build steps print.")
def build(ioc_dirs: tuple[Path, ...], tag: str, base_image: str, network: str | None,
          wheelhouse: bool, pull: bool, no_cache: bool, labels: tuple[str, ...],
          source_url: str, revision: str, screens: bool, quiet: bool, verbose: bool) -> None:
    """Build an image of podioc plus the IOC directories IOC_DIRS.

    Each IOC directory (your ioc.py, instance configs and an optional
    requirements.txt) lands at /iocs/<directory name> in the image. Then:

    \b
      podioc build iocs/demo --tag podioc:dev
      docker run --rm --network host podioc:dev run /iocs/demo/demo.yaml
      podioc up iocs/demo/demo.yaml --image podioc:dev
    """
    where = ioc_dirs[0] if ioc_dirs else Path.cwd()
    try:
        bobs, problems = screens_of(ioc_dirs) if screens else ({}, [])
    except PodiocError as exc:
        raise fail(exc) from None
    for problem in problems:
        click.echo(f"note: no screen for {problem} (--no-screens skips screens)", err=True)
    opts = BuildOptions(
        ioc_dirs=ioc_dirs, tag=tag, base_image=base_image, network=network or None,
        wheelhouse=wheelhouse, pull=pull, no_cache=no_cache,
        source_url=source_url or git_remote_url(where),
        revision=revision or git_revision(where), labels=_pairs(labels, "--label"),
        screens=bobs)
    progress = _Progress(quiet, verbose)
    try:
        result = build_image(opts, on_event=progress)
    except PodiocError as exc:
        progress.close()
        raise fail(exc) from None
    progress.close()
    if quiet:
        click.echo(result.image_id)
        return
    click.echo(f"Built {', '.join(result.tags) or result.image_id} ({result.image_id[:19]}, "
               f"{result.size / 1e6:.0f} MB, {result.seconds:.0f} s)")


def screens_of(ioc_dirs: tuple[Path, ...]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """IOC directory name in the image -> its screens ({file: .bob text}), one per
    instance config in the directory (and index.bob for several); and the configs that
    could not be described here (their error), which get no screen."""
    out: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for path, name in check_ioc_dirs(ioc_dirs):
        docs = []
        for config in sorted([*path.glob("*.yaml"), *path.glob("*.yml")]):
            try:
                cfg, cls = resolve(str(config))
                docs.append((cfg.name, describe_instance(cfg, cls)))
            except Exception as exc:  # user code may raise anything on import or __init__
                first = (str(exc).splitlines() or [""])[0]
                problems.append(f"{config}: {type(exc).__name__}: {first}")
        if docs:
            out[name] = screen_files(docs)
    return out, problems


def _load_instance(path: str, prefix: str | None) -> config_mod.InstanceConfig:
    from dataclasses import replace

    cfg = config_mod.load(path)
    if prefix is not None:
        config_mod.parse({"ioc": cfg.ioc, "prefix": prefix}, "--prefix", cfg.base_dir)
        cfg = replace(cfg, prefix=prefix)
    return cfg


def _wait_healthy(container_id: str, timeout: float) -> str:
    """Poll the container's health until healthy, unhealthy, exited or ``timeout``."""
    client = connect()
    deadline = time.monotonic() + timeout
    state: dict[str, object] = {}
    while time.monotonic() < deadline:
        state = client.api.inspect_container(container_id).get("State", {})
        health = state.get("Health")
        status = health.get("Status") if isinstance(health, dict) else None
        if status in ("healthy", "unhealthy") or not state.get("Running"):
            break
        time.sleep(0.5)
    health = state.get("Health")
    if not state.get("Running"):
        return f"exited with code {state.get('ExitCode')}"
    return str(health.get("Status")) if isinstance(health, dict) else "no healthcheck"


@click.command("up")
@click.argument("instance", type=click.Path(exists=True, dir_okay=False))
@click.option("--image", envvar="PODIOC_IMAGE", show_envvar=True, default=None,
              help="Image to run (default: deploy.image of the config, else "
                   f"{_DEFAULT_TAG}).")
@click.option("--prefix", envvar="PODIOC_PREFIX", show_envvar=True, default=None,
              help="PV prefix; overrides the instance config's prefix.")
@click.option("--env", "-e", "env", multiple=True, envvar="PODIOC_UP_ENV", show_envvar=True,
              metavar="KEY=VALUE", help="Extra environment variable (repeatable).")
@click.option("--stop-timeout", type=int, envvar="PODIOC_STOP_TIMEOUT", show_envvar=True,
              default=None, help="Seconds between SIGTERM and SIGKILL on stop (default: "
                                 "deploy.termination_grace_period, 30).")
@click.option("--wait/--no-wait", envvar="PODIOC_UP_WAIT", show_envvar=True, default=False,
              help="Wait until the container's HEALTHCHECK reports healthy.")
@click.option("--timeout", type=float, envvar="PODIOC_UP_TIMEOUT", show_envvar=True,
              default=90.0, help="Seconds --wait waits.")
def up(instance: str, image: str | None, prefix: str | None, env: tuple[str, ...],
       stop_timeout: int | None, wait: bool, timeout: float) -> None:
    """Run the instance config INSTANCE in a container, as the cluster would.

    Host network, read-only root filesystem, tmpfs /tmp, non-root, no
    capabilities, restart unless-stopped; the config's directory is mounted
    read-only at /iocs/<directory name> and this shell's EPICS_* variables are
    passed on. An older container of the same instance is replaced.
    """
    try:
        cfg = _load_instance(instance, prefix)
        spec = ctr.container_spec(cfg, image=image, extra_env=_pairs(env, "--env"),
                                  stop_timeout=stop_timeout)
        unreadable = ctr.unreadable_for_container(cfg.base_dir, Path(cfg.source))
        if unreadable:
            names = ", ".join(str(p) for p in unreadable[:5])
            click.echo(f"warning: the container runs as uid {ctr.RUN_AS.split(':')[0]} and "
                       f"cannot read {names}: make them readable (chmod -R o+rX "
                       f"{cfg.base_dir})", err=True)
        container, replaced = ctr.up(spec)
    except PodiocError as exc:
        raise fail(exc) from None
    verb = "Replaced" if replaced else "Started"
    click.echo(f"{verb} {cfg.name} (prefix {cfg.prefix}) in container {container.short_id} "
               f"from {spec.image}")
    if wait:
        try:
            health = _wait_healthy(str(container.id), timeout)
        except PodiocError as exc:
            raise fail(exc) from None
        if health != "healthy":
            raise click.ClickException(
                f"{cfg.name} is {health} after {timeout:.0f} s: see `podioc logs {cfg.name}`")
        click.echo(f"{cfg.name} is healthy")


def _instance_name(name: str) -> str:
    """An instance name, or the name of the instance an instance config file describes."""
    if config_mod.is_config_path(name) and Path(name).is_file():
        return config_mod.load(name).name
    return name


@click.command("down")
@click.argument("instance", required=False)
@click.option("--all", "all_", is_flag=True, envvar="PODIOC_DOWN_ALL", show_envvar=True,
              help="Stop every podioc-managed container.")
@click.option("--timeout", type=int, envvar="PODIOC_STOP_TIMEOUT", show_envvar=True,
              default=ctr.DEFAULT_STOP_TIMEOUT, help="Seconds between SIGTERM and SIGKILL.")
@click.option("--volumes", is_flag=True, envvar="PODIOC_DOWN_VOLUMES", show_envvar=True,
              help="Also delete the instance's autosave volume.")
def down(instance: str | None, all_: bool, timeout: int, volumes: bool) -> None:
    """Stop and remove the container of INSTANCE (a name or its config file), or --all."""
    if (instance is None) == (not all_):
        raise click.UsageError("give an INSTANCE (name or config file) or --all, not both")
    try:
        name = None if all_ else _instance_name(str(instance))
        stopped = ctr.down(name, timeout=timeout, remove_volumes=volumes)
    except PodiocError as exc:
        raise fail(exc) from None
    if not stopped:
        click.echo("No podioc containers are running.")
    for item in stopped:
        click.echo(f"Stopped {item}")


@click.command("logs")
@click.argument("instance")
@click.option("--follow", "-f", is_flag=True, envvar="PODIOC_LOGS_FOLLOW", show_envvar=True,
              help="Keep printing new output until interrupted.")
@click.option("--tail", type=int, envvar="PODIOC_LOGS_TAIL", show_envvar=True, default=None,
              help="Only the last N lines.")
def logs(instance: str, follow: bool, tail: int | None) -> None:
    """Print the output of INSTANCE's container (a name or its config file)."""
    try:
        stream = ctr.logs(_instance_name(instance), follow=follow, tail=tail)
        out = sys.stdout.buffer
        for chunk in stream:
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        return
    except PodiocError as exc:
        raise fail(exc) from None


@click.command("ps")
@click.option("--json", "as_json", is_flag=True, envvar="PODIOC_JSON", show_envvar=True,
              help="Print JSON instead of a table.")
def ps(as_json: bool) -> None:
    """List podioc-managed containers (found by label) with their state and health."""
    try:
        rows = ctr.ps()
    except PodiocError as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("No podioc containers.")
        return
    header = ("INSTANCE", "PREFIX", "STATE", "HEALTH", "IMAGE", "CONTAINER")
    table = [header] + [(r.instance, r.prefix, r.state, r.health, r.image, r.container_id)
                        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


COMMANDS = (build, up, down, logs, ps)


def register(group: click.Group) -> None:
    """Add these commands to the ``podioc`` group."""
    for command in COMMANDS:
        group.add_command(command)


register(cli)
