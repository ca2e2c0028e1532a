"""Instance configs: one small YAML file per IOC instance, checked whole at load.

- :mod:`.schema`: the document declared once (pydantic models; ``podioc schema``),
  with its blocks in :mod:`.deploy_block`, :mod:`.autosave_block`, :mod:`.access_block`,
  :mod:`.pvi_block`;
- :mod:`.load`: read a file, report every problem at once (:mod:`.problems`);
- :mod:`.epicsvars`: the one parser of EPICS YES/NO flags, address lists and ports;
- :mod:`.target`: a CLI target (config, ``ioc.py``, ``pkg.mod:Class``) to config +
  class, imported by :mod:`.ioc_class`.

pydantic and YAML load only when a config is read or its schema used: a
Runtime that is given its IOC and settings (tests, benchmarks, embedding)
starts without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# .load is light (it imports YAML and the schema when it reads a file), and it
# must stay eager: the name ``load`` is both that submodule and its function.
from .load import is_config_path, load, parse

if TYPE_CHECKING:
    from .instance import InstanceConfig
    from .schema import PROTOCOLS, SCHEMA_VERSION, json_schema

_LAZY = {"InstanceConfig": ".instance", "PROTOCOLS": ".schema", "SCHEMA_VERSION": ".schema",
         "json_schema": ".schema"}


def __getattr__(name: str) -> Any:
    """The pydantic-backed names, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = ["PROTOCOLS", "SCHEMA_VERSION", "InstanceConfig", "is_config_path", "json_schema",
           "load", "parse"]
