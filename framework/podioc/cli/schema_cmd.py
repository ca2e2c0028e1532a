"""``podioc schema``."""

from __future__ import annotations

import json

import click

from ..config import json_schema


@click.command()
def schema() -> None:
    """Print the JSON Schema of instance configs, for editors and CI checks.

    \b
    Save it next to your configs and point each config at it, e.g.:
      podioc schema > podioc-instance.schema.json
      # yaml-language-server: $schema=podioc-instance.schema.json
    """
    click.echo(json.dumps(json_schema(), indent=2))
