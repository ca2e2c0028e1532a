"""Kubernetes objects for one IOC instance: pure functions returning plain dicts.

One instance becomes a ServiceAccount (no API token), a ConfigMap holding the
instance config (its ``ioc:`` reference rewritten to the code's path inside
the image), a headless Service (the StatefulSet's governing service; it has
no ports, the IOC is reached on its node's address) and a single-replica
StatefulSet whose pod runs ``podioc run`` on the host network, hardened as
far as host networking allows. :func:`render_namespace` gives the namespace
with its Pod Security labels; :func:`kustomize_tree` lays everything out as
a kustomize tree. Nothing here reads files, the environment or the clock.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .._version import __version__
from ..autosave.settings import DEFAULT_DIR, ENV_DIR
from ..config import InstanceConfig, parse
from ..errors import ConfigError
from .settings import BEAMLINE_KEY, IOC_UID, DeploySettings

#: Where the ConfigMap with the instance config is mounted (read-only).
CONFIG_DIR = "/etc/podioc/instance"
#: Where the autosave volume is mounted.
AUTOSAVE_DIR = str(DEFAULT_DIR)
#: The container's name.
CONTAINER = "ioc"
#: Annotation carrying the sha256 of the instance config: a change rolls the pod.
CONFIG_HASH_ANNOTATION = "podioc.io/config-sha256"
#: Checks of checkov that host networking fails by design, and why it is accepted.
HOSTNETWORK_SKIPS: dict[str, str] = {
    "CKV_K8S_19": ("hostNetwork is required: Channel Access and PVAccess find servers by "
                   "UDP broadcast on the beamline subnet, which a pod network does not carry"),
    "CKV2_K8S_6": ("NetworkPolicy does not apply to hostNetwork pods; the IOC's traffic is "
                   "limited by node firewalls and EPICS access rules instead"),
}
#: Skip added only while the image is given by tag rather than digest.
TAG_SKIP = ("CKV_K8S_43", "image given by tag for this example; render with "
            "--image NAME@sha256:DIGEST (or deploy.image) to pin it in production")
#: The longest instance name: the pod's controller-revision-hash label is name + 11 chars.
MAX_NAME = 52

_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


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


def render_namespace(namespace: str) -> dict[str, Any]:
    """The namespace: Pod Security ``privileged`` enforced (hostNetwork fails ``baseline``),
    ``restricted`` warned and audited so anything beyond hostNetwork is reported."""
    labels = {"app.kubernetes.io/managed-by": "podioc"}
    for mode, level in (("enforce", "privileged"), ("warn", "restricted"),
                        ("audit", "restricted")):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {
            "name": namespace, "labels": labels,
            "annotations": {"podioc.io/pod-security": (
                "IOCs use hostNetwork, which the baseline level forbids; restricted is "
                "warned and audited so every other deviation is reported")},
        },
    }


def render_serviceaccount(inst: Instance) -> dict[str, Any]:
    """A ServiceAccount of its own whose API token is never mounted (IOCs need no API)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": inst.metadata(inst.name), "automountServiceAccountToken": False}


def render_configmap(inst: Instance) -> dict[str, Any]:
    """The instance config, mounted read-only at :data:`CONFIG_DIR`."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": inst.metadata(inst.configmap_name,
                                      **{CONFIG_HASH_ANNOTATION: inst.config_sha256}),
            "data": {inst.config_key: inst.config_text}}


def render_service(inst: Instance) -> dict[str, Any]:
    """The headless Service governing the StatefulSet (required by Kubernetes < 1.33).

    It has no ports: with hostNetwork the IOC is reached on its node's address,
    found by CA/PVA search; the Service only gives the pod a stable DNS name.
    """
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": inst.metadata(inst.name),
            "spec": {"clusterIP": "None", "selector": inst.selector(),
                     "publishNotReadyAddresses": False}}


def probe_command(inst: Instance, *, ready: bool) -> list[str]:
    """``podioc probe PREFIX`` over the first protocol served (``--ready``: PVs served)."""
    protocol = "ca" if "ca" in inst.cfg.protocols else "pva"
    cmd = ["podioc", "probe", inst.cfg.prefix, "--protocol", protocol]
    return [*cmd, "--ready", "--timeout", "5"] if ready else [*cmd, "--timeout", "5"]


#: Downward-API variables: `podioc doctor` compares them to tell host networking apart.
DOWNWARD_ENV = {"PODIOC_NODE_IP": "status.hostIP", "PODIOC_POD_IP": "status.podIP"}


def _env(inst: Instance) -> list[dict[str, Any]]:
    env = {"PODIOC_PREFIX": inst.cfg.prefix, "PODIOC_TARGET": inst.config_path,
           ENV_DIR: AUTOSAVE_DIR, "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(inst.cfg.epics)
    env.update(inst.settings.env)
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in env.items()]
    out += [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": path}}}
            for k, path in DOWNWARD_ENV.items()]
    return out


def _container(inst: Instance) -> dict[str, Any]:
    s = inst.settings
    exec_ready = {"exec": {"command": probe_command(inst, ready=True)}}
    exec_alive = {"exec": {"command": probe_command(inst, ready=False)}}
    return {
        "name": CONTAINER,
        "image": s.image,
        "imagePullPolicy": s.pull_policy,
        "args": ["run", inst.config_path],
        "env": _env(inst),
        "resources": {k: dict(v) for k, v in s.resources.items()},
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": IOC_UID, "runAsGroup": IOC_UID,
            "privileged": False, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Generous: 60 x 5 s = 5 minutes to import the IOC and start serving.
        "startupProbe": {**exec_ready, "periodSeconds": 5, "timeoutSeconds": 10,
                         "failureThreshold": 60},
        "readinessProbe": {**exec_ready, "periodSeconds": 10, "timeoutSeconds": 10,
                           "failureThreshold": 3},
        # The heartbeat ticks every second; 3 misses 30 s apart restart a stuck IOC.
        "livenessProbe": {**exec_alive, "periodSeconds": 30, "timeoutSeconds": 15,
                          "failureThreshold": 3},
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "autosave", "mountPath": AUTOSAVE_DIR},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _pod_spec(inst: Instance) -> dict[str, Any]:
    s = inst.settings
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": inst.configmap_name, "defaultMode": 0o444}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": s.tmp_size}},
    ]
    if s.autosave_claim:
        volumes.append({"name": "autosave",
                        "persistentVolumeClaim": {"claimName": s.autosave_claim}})
    spec: dict[str, Any] = {
        "serviceAccountName": inst.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": True,
        "hostPID": False,
        "hostIPC": False,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "nodeSelector": dict(s.node_selector),
        "tolerations": [dict(t) for t in s.tolerations],
        "terminationGracePeriodSeconds": s.termination_grace_period,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": IOC_UID, "runAsGroup": IOC_UID,
            "fsGroup": IOC_UID, "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(inst)],
        "volumes": volumes,
    }
    if not spec["nodeSelector"]:
        del spec["nodeSelector"]
    if not spec["tolerations"]:
        del spec["tolerations"]
    if s.priority_class:
        spec["priorityClassName"] = s.priority_class
    return spec


def checkov_skips(settings: DeploySettings) -> dict[str, str]:
    """``checkov.io/skipN`` annotations: hostNetwork's, plus the digest check for a tag."""
    skips = dict(HOSTNETWORK_SKIPS)
    if not settings.image_pinned:
        skips[TAG_SKIP[0]] = TAG_SKIP[1]
    return {f"checkov.io/skip{i}": f"{check}={reason}"
            for i, (check, reason) in enumerate(skips.items(), start=1)}


def render_statefulset(inst: Instance) -> dict[str, Any]:
    """One replica, replaced in order: never two live servers for one PV prefix."""
    s = inst.settings
    annotations = {"podioc.io/prefix": inst.cfg.prefix,
                   "podioc.io/ioc": ioc_ref_in_image(inst.cfg.ioc, s.code_dir)}
    if inst.cfg.description:
        annotations["podioc.io/description"] = inst.cfg.description
    annotations.update(checkov_skips(s))
    spec: dict[str, Any] = {
        "replicas": 1,
        "serviceName": inst.name,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": inst.selector()},
        "template": {
            "metadata": {
                "labels": inst.labels(),
                "annotations": {CONFIG_HASH_ANNOTATION: inst.config_sha256,
                                "kubectl.kubernetes.io/default-container": CONTAINER},
            },
            "spec": _pod_spec(inst),
        },
    }
    if not s.autosave_claim:
        claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": s.autosave_size}}}
        if s.autosave_storage_class:
            claim_spec["storageClassName"] = s.autosave_storage_class
        spec["volumeClaimTemplates"] = [{
            "metadata": {"name": "autosave", "labels": inst.selector()},
            "spec": claim_spec,
        }]
        spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Retain",
                                                        "whenScaled": "Retain"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": inst.metadata(inst.name, **annotations), "spec": spec}


#: File name of each object kind in a rendered directory.
FILES = {"ServiceAccount": "serviceaccount.yaml", "ConfigMap": "configmap.yaml",
         "Service": "service.yaml", "StatefulSet": "statefulset.yaml"}
#: File name of the (opt-in) ConfigMap of Phoebus screens.
SCREENS_FILE = "screens.yaml"
SCREENS_COMPONENT = "screens"


def render_screens_configmap(inst: Instance, screens: Mapping[str, str]) -> dict[str, Any]:
    """The instance's Phoebus screens (file name -> .bob text) for a screen server to
    publish; labelled ``app.kubernetes.io/component: screens`` so it can select them."""
    meta = inst.metadata(f"{inst.name}-screens")
    meta["labels"]["app.kubernetes.io/component"] = SCREENS_COMPONENT
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(screens)}


def file_for(obj: Mapping[str, Any]) -> str:
    """The file name of a rendered object."""
    if obj["metadata"].get("labels", {}).get(
            "app.kubernetes.io/component") == SCREENS_COMPONENT:
        return SCREENS_FILE
    return FILES[obj["kind"]]


def render_instance(cfg: InstanceConfig, text: str, settings: DeploySettings,
                    screens: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The objects of one instance in apply order: ServiceAccount, ConfigMap, (with
    ``screens``, the ConfigMap of screens,) Service, StatefulSet (its namespace comes
    from :func:`render_namespace`)."""
    inst = make_instance(cfg, text, settings)
    extra = [render_screens_configmap(inst, screens)] if screens else []
    return [render_serviceaccount(inst), render_configmap(inst), *extra,
            render_service(inst), render_statefulset(inst)]


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the ConfigMap's file), no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(objects: Iterable[Mapping[str, Any]], header: str = "") -> str:
    """Objects as a multi-document YAML stream (keys in Kubernetes' usual order)."""
    docs = [yaml.dump(dict(obj), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                      width=120) for obj in objects]
    head = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return head + "---\n".join(docs)


def _kustomization(resources: Sequence[str]) -> str:
    return to_yaml([{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": list(resources)}], header=GENERATED)


GENERATED = "Generated by `podioc manifest --kustomize`; edit the instance config and re-render."


def header_for(cfg: InstanceConfig) -> str:
    """The comment on top of every rendered file."""
    return (f"Generated by `podioc manifest` from {PurePosixPath(cfg.source).name}; "
            "edit that file and re-render.")


def instance_files(cfg: InstanceConfig, text: str, settings: DeploySettings,
                   *, kustomize: bool = False,
                   screens: Mapping[str, str] | None = None) -> dict[str, str]:
    """One file per object (plus ``kustomization.yaml``), by file name."""
    objects = render_instance(cfg, text, settings, screens)
    files = {file_for(o): to_yaml([o], header=header_for(cfg)) for o in objects}
    if kustomize:
        files["kustomization.yaml"] = _kustomization([file_for(o) for o in objects])
    return files


def namespace_file(namespace: str) -> tuple[str, str]:
    """``(file name, text)`` of a namespace in the kustomize base."""
    return f"namespace-{namespace}.yaml", to_yaml([render_namespace(namespace)],
                                                  header=GENERATED)


def kustomize_tree(instances: Sequence[tuple[InstanceConfig, str, DeploySettings]],
                   existing_instance_dirs: Iterable[str] = (),
                   existing_namespaces: Iterable[str] = (),
                   screens: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """Files of a kustomize root, by relative path.

    ``base/`` holds the namespaces, ``<instance>/`` each instance, and the
    root ``kustomization.yaml`` includes ``base`` and every instance
    directory, the ones rendered now and ``existing_instance_dirs`` (rendered
    earlier into the same root), so instances can be rendered one at a time.
    ``screens`` (instance name -> its screens) adds their ConfigMaps.
    """
    files: dict[str, str] = {}
    names: dict[str, str] = {}
    namespaces = set(existing_namespaces)
    for cfg, text, settings in instances:
        if cfg.name in names:
            raise ConfigError(cfg.source, "<file name>",
                              f"instance name {cfg.name!r} is also used by {names[cfg.name]}",
                              "rename one of the config files")
        names[cfg.name] = cfg.source
        for fname, body in instance_files(cfg, text, settings, kustomize=True,
                                          screens=(screens or {}).get(cfg.name)).items():
            files[f"{cfg.name}/{fname}"] = body
        namespaces.add(settings.namespace)
    base = [namespace_file(ns) for ns in sorted(namespaces)]
    for fname, body in base:
        files[f"base/{fname}"] = body
    files["base/kustomization.yaml"] = _kustomization([fname for fname, _ in base])
    dirs = sorted(set(names) | set(existing_instance_dirs) - {"base"})
    files["kustomization.yaml"] = _kustomization(["base", *dirs])
    return files
