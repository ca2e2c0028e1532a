"""Instance configs: one small YAML file per IOC instance.

```yaml
ioc: ioc.py:DemoDevice     # file.py:Class (relative to this file) or package.module:Class
prefix: "DEMO:"            # prepended to every PV name
description: Demo device   # optional
args: {noise: 0.05}        # keyword arguments of the class's __init__
protocols: [ca, pva]       # which servers to run (default both)
health: true               # serve the health PVs (default true)
epics:                     # EPICS_* server settings; the process environment wins
  EPICS_CA_SERVER_PORT: 5064
deploy: {}                 # container and Kubernetes settings (podioc manifest / up)
autosave: {}               # autosave settings
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

SCHEMA_VERSION = 1
PROTOCOLS = ("ca", "pva")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-:.\[\]<>;{}]*$")
_ENV_RE = re.compile(r"^EPICS_[A-Z0-9_]+$")
_KNOWN_KEYS = {"ioc", "prefix", "description", "args", "protocols", "health", "epics",
               "deploy", "autosave", "version", "access"}


@dataclass(frozen=True)
class InstanceConfig:
    """A validated instance config."""

    ioc: str
    prefix: str
    source: str = "<command line>"
    base_dir: Path = field(default_factory=Path.cwd)
    description: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = PROTOCOLS
    health: bool = True
    epics: dict[str, str] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)
    autosave: dict[str, Any] = field(default_factory=dict)
    access: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A DNS-1123-friendly instance name derived from the file name."""
        stem = Path(self.source).stem if self.source.endswith((".yaml", ".yml")) else self.prefix
        return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-") or "ioc"


def _fail(source: str, fieldname: str, problem: str, fix: str = "") -> ConfigError:
    return ConfigError(source, fieldname, problem, fix)


def parse(data: Any, source: str, base_dir: Path) -> InstanceConfig:
    """Validate a parsed YAML mapping into an :class:`InstanceConfig`."""
    if not isinstance(data, dict):
        raise _fail(source, "<top level>", "expected a mapping of settings",
                    "start the file with 'ioc:' and 'prefix:'")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise _fail(source, unknown[0], "unknown setting",
                    f"known settings: {', '.join(sorted(_KNOWN_KEYS))}")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise _fail(source, "version", f"unsupported version {version!r}",
                    f"this podioc reads version {SCHEMA_VERSION}")
    ioc = data.get("ioc")
    if not isinstance(ioc, str) or not ioc.strip():
        raise _fail(source, "ioc", "missing or not a string",
                    "set it to 'file.py:ClassName' or 'package.module:ClassName'")
    prefix = data.get("prefix")
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise _fail(source, "prefix", f"{prefix!r} is not a valid PV prefix",
                    "use letters, digits and _-:.[]<>;{} e.g. 'BL01:TEMP:'")
    args = data.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise _fail(source, "args", "must be a mapping of argument names to values")
    protocols = data.get("protocols", list(PROTOCOLS))
    if (not isinstance(protocols, list) or not protocols
            or any(p not in PROTOCOLS for p in protocols) or len(set(protocols)) != len(protocols)):
        raise _fail(source, "protocols", f"{protocols!r} is not a list of protocols",
                    "use [ca], [pva] or [ca, pva]")
    health = data.get("health", True)
    if not isinstance(health, bool):
        raise _fail(source, "health", f"{health!r} is not true or false")
    epics = data.get("epics") or {}
    if not isinstance(epics, dict):
        raise _fail(source, "epics", "must be a mapping of EPICS_* variables to values")
    for key, value in epics.items():
        if not isinstance(key, str) or not _ENV_RE.match(key):
            raise _fail(source, f"epics.{key}", "not an EPICS_* variable name",
                        "e.g. EPICS_CA_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _fail(source, f"epics.{key}", f"{value!r} must be a string or number")
    for section in ("deploy", "autosave", "access"):
        if not isinstance(data.get(section) or {}, dict):
            raise _fail(source, section, "must be a mapping")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, "description", "must be a string")
    return InstanceConfig(
        ioc=ioc.strip(), prefix=prefix, source=source, base_dir=base_dir,
        description=description, args=dict(args), protocols=tuple(protocols), health=health,
        epics={k: str(v) for k, v in epics.items()}, deploy=dict(data.get("deploy") or {}),
        autosave=dict(data.get("autosave") or {}), access=dict(data.get("access") or {}))


def load(path: str | Path) -> InstanceConfig:
    """Read and validate an instance config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise _fail(str(path), "<file>", f"cannot be read: {exc.strerror}",
                    "check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<file>"
        raise _fail(str(path), where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(data, str(path), path.parent.resolve())


def is_config_path(target: str) -> bool:
    """True when a CLI target names a YAML instance config."""
    return target.endswith((".yaml", ".yml"))
