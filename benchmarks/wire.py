"""The JSON-lines exchange between the runner and its worker processes."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(obj: dict[str, Any]) -> None:
    """One JSON line to the runner."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def parse_command(line: str) -> dict[str, Any] | None:
    """The runner's command on ``line``; None at the end (a blank line, EOF or ``quit``)."""
    if not line.strip():
        return None
    cmd: dict[str, Any] = json.loads(line)
    return None if cmd["cmd"] == "quit" else cmd
