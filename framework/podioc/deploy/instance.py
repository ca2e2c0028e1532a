"""One instance as the Kubernetes renderer sees it: names, labels and its in-image config.

:func:`make_instance` checks that a config can be deployed (its name fits
the label limits, its file name can be a ConfigMap key) and derives an
:class:`Instance` once; the renderers in :mod:`podioc.deploy.manifests`
read everything from it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .._version import __version__
from ..config import InstanceConfig
from ..errors import ConfigError
from .podconfig import CONFIG_DIR, config_text_in_image
from .settings import BEAMLINE_KEY, DeploySettings

#: The longest instance name: the pod's controller-revision-hash label is name + 11 chars.
MAX_NAME = 52

_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def class_label(ref: str) -> str:
    """``pkg.mod:DemoDevice`` or ``ioc.py:DemoDevice`` -> ``demo-device`` (a label value)."""
    module_ref, _, class_name = ref.partition(":")
    name = class_name or PurePosixPath(module_ref).stem.rpartition(".")[2]
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()
    kebab = re.sub(r"[^a-z0-9-]+", "-", kebab).strip("-")[:63].strip("-")
    return kebab or "ioc"


def version_label(image: str) -> str:
    """The image's tag when it is a valid label value, else podioc's version."""
    name = image.split("@", 1)[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    if tag and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", tag):
        return tag
    return __version__


@dataclass(frozen=True)
class Instance:
    """What the renderer needs of one instance, derived once."""

    cfg: InstanceConfig
    settings: DeploySettings
    config_key: str
    config_text: str

    @property
    def name(self) -> str:
        """Name of the StatefulSet, Service and ServiceAccount."""
        return self.cfg.name

    @property
    def configmap_name(self) -> str:
        """Name of the ConfigMap holding the instance config."""
        return f"{self.cfg.name}-config"

    @property
    def config_path(self) -> str:
        """The instance config's path inside the container."""
        return f"{CONFIG_DIR}/{self.config_key}"

    @property
    def config_sha256(self) -> str:
        """sha256 of the mounted config: in the pod template, so a change restarts the IOC."""
        return hashlib.sha256(self.config_text.encode()).hexdigest()

    def selector(self) -> dict[str, str]:
        """Labels that select this instance's pod (stable: the selector is immutable)."""
        return {"app.kubernetes.io/instance": self.name,
                "app.kubernetes.io/component": "ioc",
                "app.kubernetes.io/managed-by": "podioc"}

    def labels(self) -> dict[str, str]:
        """The recommended labels plus the beamline."""
        return {"app.kubernetes.io/name": class_label(self.cfg.ioc),
                "app.kubernetes.io/instance": self.name,
                "app.kubernetes.io/component": "ioc",
                "app.kubernetes.io/part-of": self.settings.part_of,
                "app.kubernetes.io/managed-by": "podioc",
                "app.kubernetes.io/version": version_label(self.settings.image),
                BEAMLINE_KEY: self.settings.beamline}

    def metadata(self, name: str, **annotations: str) -> dict[str, Any]:
        """Object metadata in the instance's namespace."""
        meta: dict[str, Any] = {"name": name, "namespace": self.settings.namespace,
                                "labels": self.labels()}
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta


def make_instance(cfg: InstanceConfig, text: str, settings: DeploySettings) -> Instance:
    """Check that ``cfg`` can be deployed and derive the in-image config."""
    if len(cfg.name) > MAX_NAME:
        raise ConfigError(cfg.source, "<file name>",
                          f"instance name {cfg.name!r} is longer than {MAX_NAME} characters",
                          "rename the config file; its stem names the Kubernetes objects")
    key = PurePosixPath(cfg.source).name
    if not _CONFIGMAP_KEY.match(key):
        raise ConfigError(cfg.source, "<file name>", f"{key!r} cannot be a ConfigMap key",
                          "use letters, digits, '-', '_' and '.' in the file name")
    return Instance(cfg, settings, key, config_text_in_image(cfg, text, settings))
