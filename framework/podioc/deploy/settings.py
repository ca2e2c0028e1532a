"""Kubernetes deployment settings of one IOC instance: the config's ``deploy:`` block.

Every key is optional; options of ``podioc manifest`` (and their ``PODIOC_*``
environment variables) override the file. Unknown keys and bad values raise
:class:`~podioc.errors.ConfigError` naming the file, the key and the fix.

```yaml
deploy:
  namespace: podioc                 # Kubernetes namespace (one per beamline is typical)
  image: podioc:0.1.0               # image with the IOC code; pin NAME@sha256:... in production
  image_pull_policy: Always         # default: Always for a tag, IfNotPresent for a digest
  code_dir: /iocs/demo/             # where the config's IOC code lives in the image
  beamline: bl01                    # node label/taint value the IOC is pinned to
  node_selector: {podioc.io/beamline: bl01}   # default derived from beamline
  tolerations: [...]                # default tolerates the podioc.io/beamline=<bl> taint
  part_of: bl01                     # app.kubernetes.io/part-of (default: beamline)
  resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: "1", memory: 512Mi}}
  tmp_size: 64Mi                    # /tmp is an in-memory emptyDir of this size
  autosave_size: 64Mi               # size of the autosave volumeClaimTemplate
  autosave_storage_class: fast      # storageClassName of that claim (default: cluster's)
  autosave_claim: my-claim          # use this existing claim instead of a template
  termination_grace_period: 30      # seconds between SIGTERM and SIGKILL
  priority_class: ioc-critical      # priorityClassName (default: none)
  env: {PODIOC_LOG_LEVEL: DEBUG}    # extra environment variables of the container
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import PurePosixPath
from typing import Any

from .._version import __version__
from ..config import InstanceConfig
from ..errors import ConfigError

#: Node label and taint key a beamline's nodes carry.
BEAMLINE_KEY = "podioc.io/beamline"
#: Numeric user and group the image runs as (its ``USER``).
IOC_UID = 10001
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(r"^[^\s]+$")
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}
_RESERVED_ENV = {"PODIOC_PREFIX", "PODIOC_TARGET", "PODIOC_AUTOSAVE_DIR", "PODIOC_NODE_IP",
                 "PODIOC_POD_IP"}

DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True)
class DeploySettings:
    """Validated deployment settings (see the module docstring for the YAML form)."""

    namespace: str = "podioc"
    image: str = f"podioc:{__version__}"
    image_pull_policy: str = ""
    code_dir: str = ""
    beamline: str = "default"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    part_of: str = ""
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    tmp_size: str = "64Mi"
    autosave_size: str = "64Mi"
    autosave_storage_class: str = ""
    autosave_claim: str = ""
    termination_grace_period: int = 30
    priority_class: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def image_pinned(self) -> bool:
        """True when the image is given by digest (``name@sha256:...``)."""
        return "@" in self.image

    @property
    def pull_policy(self) -> str:
        """The image pull policy: as set, else IfNotPresent for a digest and Always for a tag.

        A digest names exactly one image, so a cached copy is always right and
        a registry outage cannot stop a restart; a tag can move, so it is
        resolved at every start.
        """
        if self.image_pull_policy:
            return self.image_pull_policy
        return "IfNotPresent" if self.image_pinned else "Always"


KEYS: tuple[str, ...] = tuple(f.name for f in fields(DeploySettings))


def _str(source: str, key: str, value: Any, pattern: re.Pattern[str] | None = None,
         fix: str = "") -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(source, f"deploy.{key}", f"{value!r} must be a string", fix)
    text = str(value)
    if pattern is not None and not pattern.match(text):
        raise ConfigError(source, f"deploy.{key}", f"{text!r} is not valid", fix)
    return text


def _str_map(source: str, key: str, value: Any, key_re: re.Pattern[str],
             value_re: re.Pattern[str] | None, fix: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(source, f"deploy.{key}", "must be a mapping", fix)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not key_re.match(k):
            raise ConfigError(source, f"deploy.{key}.{k}", "is not a valid name", fix)
        out[k] = _str(source, f"{key}.{k}", v, value_re, fix)
    return out


def _resources(source: str, value: Any) -> dict[str, dict[str, str]]:
    fix = "e.g. {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: '1', memory: 512Mi}}"
    if not isinstance(value, dict) or set(value) - {"requests", "limits"}:
        raise ConfigError(source, "deploy.resources", "must map requests/limits to cpu/memory",
                          fix)
    out = {k: dict(v) for k, v in DEFAULT_RESOURCES.items()}
    for section, amounts in value.items():
        if not isinstance(amounts, dict) or set(amounts) - {"cpu", "memory"}:
            raise ConfigError(source, f"deploy.resources.{section}",
                              "must map cpu and/or memory to quantities", fix)
        for resource, amount in amounts.items():
            out[section][resource] = _str(source, f"resources.{section}.{resource}", amount,
                                          _QUANTITY, "a Kubernetes quantity like 250m or 256Mi")
    return out


def _tolerations(source: str, value: Any) -> tuple[dict[str, Any], ...]:
    fix = ("a list like [{key: podioc.io/beamline, operator: Equal, value: bl01, "
           "effect: NoSchedule}]")
    if not isinstance(value, list):
        raise ConfigError(source, "deploy.tolerations", "must be a list", fix)
    out = []
    for i, item in enumerate(value):
        where = f"deploy.tolerations[{i}]"
        if not isinstance(item, dict) or set(item) - _TOLERATION_KEYS:
            raise ConfigError(source, where, "must be a mapping of "
                              f"{', '.join(sorted(_TOLERATION_KEYS))}", fix)
        if item.get("operator", "Equal") not in ("Equal", "Exists"):
            raise ConfigError(source, f"{where}.operator", "must be Equal or Exists", fix)
        if "effect" in item and item["effect"] not in _EFFECTS:
            raise ConfigError(source, f"{where}.effect",
                              f"must be one of {', '.join(sorted(_EFFECTS))}", fix)
        if "tolerationSeconds" in item and (not isinstance(item["tolerationSeconds"], int)
                                            or isinstance(item["tolerationSeconds"], bool)):
            raise ConfigError(source, f"{where}.tolerationSeconds", "must be an integer", fix)
        clean = {k: (v if k == "tolerationSeconds" else str(v)) for k, v in item.items()}
        out.append(clean)
    return tuple(out)


def default_code_dir(cfg: InstanceConfig) -> str:
    """``/iocs/<name of the directory holding the config>/``: where the image keeps the code."""
    return f"/iocs/{cfg.base_dir.name}/"


def load_settings(cfg: InstanceConfig,
                  overrides: Mapping[str, Any] | None = None) -> DeploySettings:
    """Validate ``cfg.deploy`` and apply ``overrides`` (values that are None are ignored)."""
    source = cfg.source
    data: dict[str, Any] = dict(cfg.deploy)
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(source, f"deploy.{unknown[0]}", "unknown setting",
                          f"known deploy settings: {', '.join(KEYS)}")
    for key, value in (overrides or {}).items():
        if key not in KEYS:
            raise ConfigError("<options>", key, "unknown deploy setting",
                              f"known deploy settings: {', '.join(KEYS)}")
        if value is not None:
            data[key] = value
    out: dict[str, Any] = {}
    if "namespace" in data:
        out["namespace"] = _str(source, "namespace", data["namespace"], _DNS_LABEL,
                                "a DNS label: lower-case letters, digits and '-'")
    if "image" in data:
        out["image"] = _str(source, "image", data["image"], _IMAGE,
                            "an image reference such as NAME:TAG or NAME@sha256:DIGEST")
    out["image_pull_policy"] = ""
    if data.get("image_pull_policy"):
        out["image_pull_policy"] = _str(source, "image_pull_policy", data["image_pull_policy"],
                                        re.compile("^(Always|IfNotPresent|Never)$"),
                                        "Always, IfNotPresent or Never")
    code_dir = _str(source, "code_dir", data.get("code_dir") or default_code_dir(cfg))
    if not PurePosixPath(code_dir).is_absolute():
        raise ConfigError(source, "deploy.code_dir", f"{code_dir!r} is not an absolute path",
                          "the IOC code's directory inside the image, e.g. /iocs/demo/")
    out["code_dir"] = code_dir.rstrip("/") + "/"
    beamline = _str(source, "beamline", data.get("beamline", "default"), _DNS_LABEL,
                    "a DNS label: lower-case letters, digits and '-'")
    out["beamline"] = beamline
    label_fix = "label keys like podioc.io/beamline and values of up to 63 letters/digits/-_."
    out["node_selector"] = (_str_map(source, "node_selector", data["node_selector"],
                                     _LABEL_KEY, _LABEL_VALUE, label_fix)
                            if "node_selector" in data else {BEAMLINE_KEY: beamline})
    out["tolerations"] = (_tolerations(source, data["tolerations"]) if "tolerations" in data
                          else ({"key": BEAMLINE_KEY, "operator": "Equal", "value": beamline,
                                 "effect": "NoSchedule"},))
    out["part_of"] = _str(source, "part_of", data.get("part_of") or beamline, _LABEL_VALUE,
                          label_fix)
    out["resources"] = _resources(source, data.get("resources") or {})
    for key in ("tmp_size", "autosave_size"):
        if key in data:
            out[key] = _str(source, key, data[key], _QUANTITY, "a quantity like 64Mi")
    for key in ("autosave_storage_class", "autosave_claim", "priority_class"):
        if data.get(key):
            out[key] = _str(source, key, data[key],
                            re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"),
                            "a Kubernetes object name")
    if "termination_grace_period" in data:
        grace = data["termination_grace_period"]
        if not isinstance(grace, int) or isinstance(grace, bool) or not 15 <= grace <= 3600:
            raise ConfigError(source, "deploy.termination_grace_period",
                              f"{grace!r} is not a number of seconds",
                              "an integer from 15 to 3600: the final autosave may take up to 10 s; "
                              "30 leaves time for a clean shutdown")
        out["termination_grace_period"] = grace
    if "env" in data:
        env = _str_map(source, "env", data["env"], _ENV_NAME, None,
                       "a mapping of variable names to values")
        reserved = sorted(set(env) & _RESERVED_ENV)
        if reserved:
            raise ConfigError(source, f"deploy.env.{reserved[0]}", "is set by podioc",
                              "set the prefix with 'prefix:' and the rest is derived")
        if any(k.startswith("EPICS_") for k in env):
            bad = next(k for k in env if k.startswith("EPICS_"))
            raise ConfigError(source, f"deploy.env.{bad}", "EPICS settings belong in 'epics:'",
                              "move it to the config's epics: block")
        out["env"] = env
    return DeploySettings(**out)
