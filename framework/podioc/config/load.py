"""Read an instance config file and check all of it at once (see :mod:`.schema`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .instance import InstanceConfig


def parse(data: Any, source: str, base_dir: Path) -> InstanceConfig:
    """Validate a parsed YAML mapping into an :class:`InstanceConfig`.

    Raises :class:`ConfigError` listing every problem, each with its field path and fix.
    """
    from .instance import InstanceConfig  # pydantic: only once a config is read
    from .problems import validate
    from .schema import InstanceDocument

    if not isinstance(data, dict):
        raise ConfigError(source, "<top level>", "expected a mapping of settings",
                          "start the file with 'ioc:' and 'prefix:'")
    doc = validate(InstanceDocument, data, source)
    return InstanceConfig(
        ioc=doc.ioc, prefix=doc.prefix, source=source, base_dir=base_dir,
        description=doc.description, args=dict(doc.args), protocols=tuple(doc.protocols),
        health=doc.health.enabled,
        health_block=doc.health.model_dump(exclude={"enabled"}, exclude_none=True),
        epics={k: str(v) for k, v in doc.epics.items()},
        deploy=dict(data.get("deploy") or {}), autosave=dict(data.get("autosave") or {}),
        access=dict(data.get("access") or {}), put_log=dict(data.get("put_log") or {}),
        pvi=doc.pvi.name if doc.pvi.enabled else None)


def load(path: str | Path) -> InstanceConfig:
    """Read and validate an instance config file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), "<file>", f"cannot be read: {exc.strerror}",
                          "check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<file>"
        raise ConfigError(str(path), where,
                          f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(data, str(path), path.parent.resolve())


def is_config_path(target: str) -> bool:
    """True when a CLI target names a YAML instance config."""
    return target.endswith((".yaml", ".yml"))
