"""Turn a CLI target (config file, python file or module:Class) into config + class."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..model import IOC
from .instance import InstanceConfig
from .ioc_class import load_class
from .load import is_config_path, load, parse


def resolve(target: str, prefix: str | None = None,
            protocols: str | None = None) -> tuple[InstanceConfig, type[IOC]]:
    """Load the instance config (or make one) and import its IOC class.

    ``target`` is ``instance.yaml``, ``path/to/ioc.py[:Class]`` or
    ``package.module:Class``; ``prefix`` and ``protocols`` (comma-separated)
    override the config.
    """
    if is_config_path(target):
        cfg = load(target)
    else:
        cfg = InstanceConfig(ioc=target, prefix="", source="<command line>",
                             base_dir=Path.cwd())
    if prefix is not None:
        parse({"ioc": cfg.ioc, "prefix": prefix}, "--prefix", cfg.base_dir)
        cfg = replace(cfg, prefix=prefix)
    if protocols is not None:
        chosen = [p.strip() for p in protocols.split(",") if p.strip()]
        parse({"ioc": cfg.ioc, "prefix": cfg.prefix, "protocols": chosen}, "--protocols",
              cfg.base_dir)
        cfg = replace(cfg, protocols=tuple(chosen))
    cls = load_class(cfg.ioc, cfg.base_dir, cfg.source)
    return cfg, cls
