"""Kubernetes objects for one IOC instance: pure functions returning plain dicts.

One instance becomes a ServiceAccount (no API token), a ConfigMap holding the
instance config (its ``ioc:`` reference rewritten to the code's path inside
the image, see :mod:`podioc.deploy.podconfig`), a headless Service (the
StatefulSet's governing service; it has no ports, the IOC is reached on its
node's address) and a single-replica StatefulSet whose pod runs ``podioc
run`` on the host network, hardened as far as host networking allows.
:func:`render_namespace` gives the namespace with its Pod Security labels;
:mod:`podioc.deploy.manifest_files` turns the objects into YAML files.
Nothing in this module reads files, the environment or the clock; the one
file read while rendering, an ``access.file`` rules file, is read by
:func:`~podioc.deploy.podconfig.config_text_in_image`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..autosave.settings import DEFAULT_DIR, ENV_DIR
from ..config import InstanceConfig
from .instance import Instance, make_instance
from .podconfig import CONFIG_DIR, ioc_ref_in_image
from .settings import IOC_UID, DeploySettings

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
        # StatefulSets allow only Always; explicit because SYSRESET relies on it (exit 75)
        "restartPolicy": "Always",
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



#: Component label of the (opt-in) ConfigMap of Phoebus screens.
SCREENS_COMPONENT = "screens"


def render_screens_configmap(inst: Instance, screens: Mapping[str, str]) -> dict[str, Any]:
    """The instance's Phoebus screens (file name -> .bob text) for a screen server to
    publish; labelled ``app.kubernetes.io/component: screens`` so it can select them."""
    meta = inst.metadata(f"{inst.name}-screens")
    meta["labels"]["app.kubernetes.io/component"] = SCREENS_COMPONENT
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(screens)}


def render_instance(cfg: InstanceConfig, text: str, settings: DeploySettings,
                    screens: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The objects of one instance in apply order: ServiceAccount, ConfigMap, (with
    ``screens``, the ConfigMap of screens,) Service, StatefulSet (its namespace comes
    from :func:`render_namespace`)."""
    inst = make_instance(cfg, text, settings)
    extra = [render_screens_configmap(inst, screens)] if screens else []
    return [render_serviceaccount(inst), render_configmap(inst), *extra,
            render_service(inst), render_statefulset(inst)]
