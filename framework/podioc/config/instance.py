"""A validated instance config, as the rest of podioc uses it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import PROTOCOLS


@dataclass(frozen=True)
class InstanceConfig:
    """A validated instance config.

    ``deploy``, ``autosave``, ``access`` and ``put_log`` are the blocks as written
    (already checked against :mod:`.schema`); :mod:`podioc.deploy.settings`,
    :mod:`podioc.autosave.settings`, :mod:`podioc.access` and
    :mod:`podioc.putlog.settings` build their typed settings from them with the
    same models. ``health`` is the ``health:`` block's ``enabled``; its other
    settings are ``health_block`` (:mod:`podioc.runtime.iocstats` reads them).
    """

    ioc: str
    prefix: str
    source: str = "<command line>"
    base_dir: Path = field(default_factory=Path.cwd)
    description: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = PROTOCOLS
    health: bool = True
    #: the ``health:`` block's settings besides ``enabled`` (engineer, location, sysreset)
    health_block: dict[str, Any] = field(default_factory=dict)
    epics: dict[str, str] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)
    autosave: dict[str, Any] = field(default_factory=dict)
    access: dict[str, Any] = field(default_factory=dict)
    put_log: dict[str, Any] = field(default_factory=dict)
    #: name of the PVI PVs (PREFIX:<pvi>), or None for none
    pvi: str | None = "PVI"

    @property
    def name(self) -> str:
        """A DNS-1123-friendly instance name derived from the file name."""
        stem = Path(self.source).stem if self.source.endswith((".yaml", ".yml")) else self.prefix
        return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-") or "ioc"
