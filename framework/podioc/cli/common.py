"""The root command group and options shared by several commands."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._version import __version__
from ..errors import PodiocError

F = TypeVar("F", bound=Callable[..., Any])

TARGET_HELP = ("TARGET is an instance config (instance.yaml), a Python file with one IOC "
               "class (ioc.py or ioc.py:Class), or an importable package.module:Class.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="podioc")
@click.option("--log-level", envvar="PODIOC_LOG_LEVEL", show_envvar=True, default="INFO",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Logging threshold.")
def cli(log_level: str) -> None:
    """podioc: Python EPICS soft IOCs over Channel Access and PVAccess.

    \b
    Typical use:
      podioc run iocs/demo/demo.yaml        serve an IOC instance on this host
      podioc describe iocs/demo/demo.yaml   list its PVs
      podioc probe DEMO:                    check that an IOC is alive
    """
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def target_options(fn: F) -> F:
    """The TARGET argument and --prefix, shared by run, describe, manifest..."""
    fn = click.option("--prefix", envvar="PODIOC_PREFIX", show_envvar=True, default=None,
                      help="PV prefix; overrides the instance config's prefix.")(fn)
    return click.argument("target", envvar="PODIOC_TARGET")(fn)


def fail(exc: BaseException) -> click.ClickException:
    """Turn a podioc error into a clean CLI error (no traceback)."""
    if isinstance(exc, PodiocError):
        return click.ClickException(str(exc))
    return click.ClickException(f"{type(exc).__name__}: {exc}")
