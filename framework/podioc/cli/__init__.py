"""The ``podioc`` command line. Each command lives in its own module."""

from __future__ import annotations

import sys

import click

from .common import cli
from .describe_cmd import describe
from .probe_cmd import probe
from .run_cmd import run
from .schema_cmd import schema

cli.add_command(run)
cli.add_command(describe)
cli.add_command(probe)
cli.add_command(schema)
# -- commands of other areas register below this line (one line each) --
from . import image_cmds  # noqa: E402, F401, I001  (registers build, up, down, logs, ps)
from . import manifest_cmd  # noqa: E402, F401  (registers `podioc manifest`)
from . import doctor_cmd  # noqa: E402, F401  (registers `podioc doctor`)
from . import screens_cmd  # noqa: E402, F401  (registers `podioc screens`)
from . import monitor_cmd  # noqa: E402, F401  (registers `podioc monitor`)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="podioc", standalone_mode=True))


__all__ = ["cli", "click", "main"]
