"""Instance configs: one small YAML file per IOC instance, checked whole at load.

- :mod:`.schema`: the document declared once (pydantic models; ``podioc schema``),
  with its blocks in :mod:`.deploy_block`, :mod:`.autosave_block`, :mod:`.access_block`,
  :mod:`.pvi_block`;
- :mod:`.load`: read a file, report every problem at once (:mod:`.problems`);
- :mod:`.epicsvars`: the one parser of EPICS YES/NO flags, address lists and ports;
- :mod:`.target`: a CLI target (config, ``ioc.py``, ``pkg.mod:Class``) to config +
  class, imported by :mod:`.ioc_class`.
"""

from .instance import InstanceConfig
from .load import is_config_path, load, parse
from .schema import PROTOCOLS, SCHEMA_VERSION, json_schema

__all__ = ["PROTOCOLS", "SCHEMA_VERSION", "InstanceConfig", "is_config_path", "json_schema",
           "load", "parse"]
