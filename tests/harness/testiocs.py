"""Paths of the IOCs tests run, and instance configs for them."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
DEMO_YAML = REPO / "iocs" / "demo" / "demo.yaml"
#: The test IOC with every kind of PV (see its docstring).
ALLKINDS = TESTS / "integration" / "iocs" / "allkinds.py"


def write_allkinds_yaml(directory: Path, *, marker: Path | None = None,
                        prefix: str = "AK:", extra: str = "") -> Path:
    """An instance config for the AllKinds test IOC (optionally with a marker file)."""
    args = f"args: {{marker: '{marker}'}}\n" if marker is not None else ""
    path = directory / "allkinds.yaml"
    path.write_text(f"ioc: '{ALLKINDS}:AllKinds'\nprefix: '{prefix}'\n{args}{extra}")
    return path
