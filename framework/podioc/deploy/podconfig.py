"""The instance config as the pod reads it: ``ioc:`` rewritten to the code's path in the image.

:func:`config_text_in_image` keeps comments and layout where it can, carries
an ``access.file`` rules file inline (the only file read here), and checks the
result parses to the same config. It goes into the instance's ConfigMap,
mounted at :data:`CONFIG_DIR`.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path, PurePosixPath

import yaml

from ..config import InstanceConfig, parse
from ..errors import ConfigError
from .settings import DeploySettings

#: Where the ConfigMap with the instance config is mounted (read-only).
CONFIG_DIR = "/etc/podioc/instance"


def ioc_ref_in_image(ref: str, code_dir: str) -> str:
    """Rewrite ``file.py[:Class]`` relative to ``code_dir``; module references stay as they are.

    >>> ioc_ref_in_image("ioc.py:DemoDevice", "/iocs/demo/")
    '/iocs/demo/ioc.py:DemoDevice'
    """
    module_ref, sep, class_name = ref.partition(":")
    if not module_ref.endswith(".py") or PurePosixPath(module_ref).is_absolute():
        return ref
    return posixpath.normpath(posixpath.join(code_dir, module_ref)) + sep + class_name


def _replace_scalar(text: str, key: str, value: str) -> str | None:
    """Replace the value of the top-level ``key: value`` line, keeping everything else."""
    pattern = re.compile(rf"^{re.escape(key)}[ \t]*:[ \t]*(?P<value>[^#\n]*?)"
                         r"(?P<comment>[ \t]+#[^\n]*)?[ \t]*$", re.M)
    matches = list(pattern.finditer(text))
    if len(matches) != 1:
        return None
    match = matches[0]
    start, end = match.span("value")
    return text[:start] + json.dumps(value) + text[end:]


def config_text_in_image(cfg: InstanceConfig, text: str, settings: DeploySettings) -> str:
    """The instance config as the pod reads it: ``ioc:`` points into the image.

    Comments and layout are kept where the ``ioc:`` and ``prefix:`` lines can
    be rewritten in place; otherwise the config is written out anew. Either
    way the result is checked to parse to the same config.
    """
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(cfg.source, "<top level>", "expected a mapping of settings")
    wanted = dict(data, ioc=ioc_ref_in_image(cfg.ioc, settings.code_dir), prefix=cfg.prefix)
    access = data.get("access")
    if isinstance(access, dict) and isinstance(access.get("file"), str):
        # The rules file is not in the ConfigMap: carry its text inline instead,
        # so the mounted config is complete and a rules change restarts the IOC.
        rules_path = cfg.base_dir / access["file"]
        try:
            rules = rules_path.read_text()
        except OSError as exc:
            raise ConfigError(cfg.source, "access.file", f"cannot read {rules_path}: "
                              f"{exc.strerror}", "give a path relative to the config") from None
        inline = {k: v for k, v in access.items() if k != "file"}
        wanted["access"] = {"rules": rules, **inline}
    out: str | None = text if wanted.get("access") == data.get("access") else None
    for key in ("ioc", "prefix"):
        if out is not None and data.get(key) != wanted[key]:
            out = _replace_scalar(out, key, wanted[key])
    if out is None or yaml.safe_load(out) != wanted:
        name = PurePosixPath(cfg.source).name
        out = (f"# {name} as rendered by podioc manifest\n"
               + yaml.safe_dump(wanted, sort_keys=False, default_flow_style=False))
    parse(yaml.safe_load(out), cfg.source, Path(CONFIG_DIR))
    return out if out.endswith("\n") else out + "\n"
