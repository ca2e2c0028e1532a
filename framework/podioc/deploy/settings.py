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

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .._version import __version__
from ..config import InstanceConfig
from ..config.deploy_block import DEFAULT_RESOURCES, PULL_POLICIES, DeployBlock
from ..config.problems import validate
from ..errors import ConfigError

#: Node label and taint key a beamline's nodes carry.
BEAMLINE_KEY = "podioc.io/beamline"
#: Numeric user and group the image runs as (its ``USER``).
IOC_UID = 10001
__all__ = ["BEAMLINE_KEY", "DEFAULT_RESOURCES", "IOC_UID", "KEYS", "PULL_POLICIES",
           "DeploySettings", "default_code_dir", "load_settings"]


def _default(key: str) -> Any:
    """The default of a ``deploy:`` key, as declared in the schema."""
    return DeployBlock.model_fields[key].default


@dataclass(frozen=True)
class DeploySettings:
    """Validated deployment settings (see the module docstring for the YAML form)."""

    namespace: str = _default("namespace")
    image: str = f"podioc:{__version__}"
    image_pull_policy: str = ""
    code_dir: str = ""
    beamline: str = _default("beamline")
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    part_of: str = ""
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    tmp_size: str = _default("tmp_size")
    autosave_size: str = _default("autosave_size")
    autosave_storage_class: str = ""
    autosave_claim: str = ""
    termination_grace_period: int = _default("termination_grace_period")
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


def default_code_dir(cfg: InstanceConfig) -> str:
    """``/iocs/<name of the directory holding the config>/``: where the image keeps the code."""
    return f"/iocs/{cfg.base_dir.name}/"


def load_settings(cfg: InstanceConfig,
                  overrides: Mapping[str, Any] | None = None) -> DeploySettings:
    """Validate ``cfg.deploy`` and apply ``overrides`` (values that are None are ignored).

    Errors name the file, every bad key and the fix.
    """
    data: dict[str, Any] = dict(cfg.deploy)
    for key, value in (overrides or {}).items():
        if key not in KEYS:
            raise ConfigError("<options>", key, "unknown deploy setting",
                              f"known deploy settings: {', '.join(KEYS)}")
        if value is not None:
            data[key] = value
    block = validate(DeployBlock, data, cfg.source, "deploy")
    beamline = block.beamline
    resources = {k: dict(v) for k, v in DEFAULT_RESOURCES.items()}
    for section in ("requests", "limits"):
        amounts = getattr(block.resources, section) if block.resources else None
        if amounts is not None:
            resources[section].update(amounts.model_dump(exclude_none=True))
    tolerations = (tuple(t.model_dump(by_alias=True, exclude_none=True)
                         for t in block.tolerations) if block.tolerations is not None
                   else ({"key": BEAMLINE_KEY, "operator": "Equal", "value": beamline,
                          "effect": "NoSchedule"},))
    return DeploySettings(
        namespace=block.namespace, image=block.image or DeploySettings.image,
        image_pull_policy=block.image_pull_policy or "",
        code_dir=(block.code_dir or default_code_dir(cfg)).rstrip("/") + "/",
        beamline=beamline,
        node_selector=(dict(block.node_selector) if block.node_selector is not None
                       else {BEAMLINE_KEY: beamline}),
        tolerations=tolerations, part_of=block.part_of or beamline, resources=resources,
        tmp_size=block.tmp_size, autosave_size=block.autosave_size,
        autosave_storage_class=block.autosave_storage_class or "",
        autosave_claim=block.autosave_claim or "",
        termination_grace_period=block.termination_grace_period,
        priority_class=block.priority_class or "", env=dict(block.env or {}))
