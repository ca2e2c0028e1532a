"""Autosave settings: the instance config's ``autosave:`` block plus the environment.

```yaml
autosave:
  enabled: true              # false turns autosave off for this instance
  directory: ./autosave      # relative to this file; $PODIOC_AUTOSAVE_DIR overrides it
  file: BL01-TEMP.sav        # default: derived from the prefix (unique per prefix)
  debounce: 0.5              # s: a change is on disk at most this long (plus the write) later
  period: 30                 # s: retry failed saves, recreate a deleted file
  generations: 3             # previous files kept: NAME.sav.1 .. NAME.sav.3
  pvs: [gain, "LABEL"]       # also save these (attribute names, PV suffixes or full names)
  exclude: [mode]            # never save these, even if declared autosave=True
```

The directory is, in this order: ``$PODIOC_AUTOSAVE_DIR`` (the environment
wins, as it does for EPICS_* variables: the image and the manifests set it to
the mounted volume, so one instance config works on a workstation and in a
container); ``autosave.directory`` (relative to the config file); the built-in
``/var/lib/podioc/autosave``. A directory from the environment or the config
is created if missing and must be writable, otherwise the IOC refuses to start
(an operator asked for persistence; running without it would silently lose
settings). The built-in default is used only if it already exists and is
writable; otherwise autosave is disabled with a warning, so ``podioc run`` on
a workstation works without setup.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.autosave_block import (
    DEFAULT_DEBOUNCE,
    DEFAULT_GENERATIONS,
    DEFAULT_PERIOD,
    FILE_NAME_RE,
    MAX_GENERATIONS,
    AutosaveBlock,
)
from ..config.problems import validate

#: The variable naming the autosave directory (the image sets it to its volume).
ENV_DIR = "PODIOC_AUTOSAVE_DIR"
#: Used when neither the config nor the environment names a directory.
DEFAULT_DIR = Path("/var/lib/podioc/autosave")
KNOWN_KEYS = tuple(AutosaveBlock.model_fields)
__all__ = ["DEFAULT_DIR", "ENV_DIR", "KNOWN_KEYS", "MAX_GENERATIONS", "AutosaveSettings",
           "file_name_for"]


def file_name_for(prefix: str) -> str:
    """A file name unique to ``prefix``: the prefix itself when it is a safe file
    name, else a readable form plus 8 hex digits of its SHA-1 (``BL01:TEMP:`` ->
    ``BL01_TEMP-0a1b2c3d.sav``)."""
    if prefix and FILE_NAME_RE.match(prefix) and not prefix.endswith("."):
        return f"{prefix}.sav"
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", prefix).strip("_") or "ioc"
    return f"{readable}-{hashlib.sha1(prefix.encode()).hexdigest()[:8]}.sav"


@dataclass(frozen=True)
class AutosaveSettings:
    """Validated autosave settings of one instance."""

    enabled: bool = True
    directory: Path = DEFAULT_DIR
    #: True when the directory was configured (config or environment): then it
    #: must be usable; the built-in default may be missing (autosave is disabled).
    explicit_directory: bool = False
    #: Where the directory setting came from, for messages.
    directory_source: str = "default"
    file: str | None = None
    debounce: float = DEFAULT_DEBOUNCE
    period: float = DEFAULT_PERIOD
    generations: int = DEFAULT_GENERATIONS
    pvs: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    source: str = "<defaults>"

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, source: str, base_dir: Path,
                    env: Mapping[str, str]) -> AutosaveSettings:
        """Validate the ``autosave:`` block; errors name the file, every bad field and the fix."""
        checked = validate(AutosaveBlock, dict(block or {}), source, "autosave")
        if env.get(ENV_DIR, "").strip():
            path, explicit, origin = Path(env[ENV_DIR].strip()), True, ENV_DIR
        elif checked.directory is not None:
            path, explicit, origin = base_dir / Path(checked.directory).expanduser(), True, source
        else:
            path, explicit, origin = DEFAULT_DIR, False, "default"
        return cls(enabled=checked.enabled, directory=path, explicit_directory=explicit,
                   directory_source=origin, file=checked.file, debounce=float(checked.debounce),
                   period=float(checked.period), generations=checked.generations,
                   pvs=tuple(checked.pvs or ()), exclude=tuple(checked.exclude or ()),
                   source=source)
