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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: The variable naming the autosave directory (the image sets it to its volume).
ENV_DIR = "PODIOC_AUTOSAVE_DIR"
#: Used when neither the config nor the environment names a directory.
DEFAULT_DIR = Path("/var/lib/podioc/autosave")
KNOWN_KEYS = ("enabled", "directory", "file", "debounce", "period", "generations", "pvs",
              "exclude")
_FILE_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
MAX_GENERATIONS = 100


def file_name_for(prefix: str) -> str:
    """A file name unique to ``prefix``: the prefix itself when it is a safe file
    name, else a readable form plus 8 hex digits of its SHA-1 (``BL01:TEMP:`` ->
    ``BL01_TEMP-0a1b2c3d.sav``)."""
    if prefix and _FILE_RE.match(prefix) and not prefix.endswith("."):
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
    debounce: float = 0.5
    period: float = 30.0
    generations: int = 3
    pvs: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    source: str = "<defaults>"

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, source: str, base_dir: Path,
                    env: Mapping[str, str]) -> AutosaveSettings:
        """Validate the ``autosave:`` block; errors name the file, the field and the fix."""
        block = dict(block or {})

        def fail(key: str, problem: str, fix: str = "") -> ConfigError:
            return ConfigError(source, f"autosave.{key}", problem, fix)

        for key in block:
            if key not in KNOWN_KEYS:
                raise fail(str(key), "unknown setting", f"known: {', '.join(KNOWN_KEYS)}")
        enabled = block.get("enabled", True)
        if not isinstance(enabled, bool):
            raise fail("enabled", f"{enabled!r} is not true or false")

        def seconds(key: str, default: float, minimum: float) -> float:
            value = block.get(key, default)
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or value < minimum):
                raise fail(key, f"{value!r} is not a number of seconds >= {minimum:g}",
                           f"e.g. {key}: {default:g}")
            return float(value)

        debounce = seconds("debounce", cls.debounce, 0.0)
        period = seconds("period", cls.period, 0.01)
        generations = block.get("generations", cls.generations)
        if (isinstance(generations, bool) or not isinstance(generations, int)
                or not 0 <= generations <= MAX_GENERATIONS):
            raise fail("generations", f"{generations!r} is not a whole number "
                       f"0..{MAX_GENERATIONS}", "e.g. generations: 3")

        def names(key: str) -> tuple[str, ...]:
            value = block.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise fail(key, f"{value!r} is not a list of PV names",
                           f"e.g. {key}: [setpoint, MODE] (attribute names or PV suffixes)")
            return tuple(value)

        file = block.get("file")
        if file is not None and (not isinstance(file, str) or not _FILE_RE.match(file)):
            raise fail("file", f"{file!r} is not a plain file name",
                       "use letters, digits, '_', '-' and '.', e.g. file: bl01-temp.sav")
        directory = block.get("directory")
        if directory is not None and (not isinstance(directory, str) or not directory.strip()):
            raise fail("directory", f"{directory!r} is not a directory path")
        if env.get(ENV_DIR, "").strip():
            path, explicit, origin = Path(env[ENV_DIR].strip()), True, ENV_DIR
        elif directory is not None:
            path, explicit, origin = base_dir / Path(directory).expanduser(), True, source
        else:
            path, explicit, origin = DEFAULT_DIR, False, "default"
        return cls(enabled=enabled, directory=path, explicit_directory=explicit,
                   directory_source=origin, file=file, debounce=debounce, period=period,
                   generations=generations, pvs=names("pvs"), exclude=names("exclude"),
                   source=source)
