"""Kubernetes manifests: shape, hardening, schema validity, Pod Security, drift of k8s/."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from podioc import __version__
from podioc import config as config_mod
from podioc.cli import cli
from podioc.config import InstanceConfig
from podioc.deploy import manifest_files, manifests, podconfig
from podioc.deploy.settings import DeploySettings, load_settings
from podioc.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "iocs" / "demo" / "demo.yaml"
K8S = ROOT / "k8s"
#: Kubernetes versions every manifest must validate against (strict): the newest
#: schema kubernetes-validate ships and an older one still in wide use.
K8S_VERSIONS = (kubernetes_validate.utils.latest_version(), "1.29")


# -- helpers -------------------------------------------------------------------------------


def load(path: Path = DEMO, **deploy: Any) -> tuple[InstanceConfig, str, DeploySettings]:
    """Config, its text and settings; ``deploy`` replaces keys of its deploy block."""
    cfg = config_mod.load(path)
    if deploy:
        cfg = replace(cfg, deploy={**cfg.deploy, **deploy})
    return cfg, path.read_text(), load_settings(cfg)


def render(path: Path = DEMO, **deploy: Any) -> dict[str, dict[str, Any]]:
    """Rendered objects by kind."""
    cfg, text, settings = load(path, **deploy)
    return {o["kind"]: o for o in manifests.render_instance(cfg, text, settings)}


def pod(objs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objs["StatefulSet"]["spec"]["template"]["spec"]
    return spec


def container(objs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    c: dict[str, Any] = pod(objs)["containers"][0]
    return c


def env_of(objs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Plain env values; downward-API entries show as their field path."""
    return {e["name"]: e.get("value", e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"))
            for e in container(objs)["env"]}


def test_downward_api_ips_for_doctor() -> None:
    env = env_of(render())
    assert env["PODIOC_NODE_IP"] == "status.hostIP"
    assert env["PODIOC_POD_IP"] == "status.podIP"


def write_config(tmp_path: Path, text: str, dirname: str = "mydev",
                 filename: str = "bench.yaml") -> Path:
    d = tmp_path / dirname
    d.mkdir(parents=True, exist_ok=True)
    (d / "ioc.py").write_text("")
    path = d / filename
    path.write_text(text)
    return path


def instance_configs() -> list[Path]:
    """Every instance config of the example IOCs (YAML files with a top-level ``ioc:``)."""
    out = []
    for path in sorted((ROOT / "iocs").glob("*/*.y*ml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "ioc" in data:
            out.append(path)
    return out


@pytest.fixture(autouse=True)
def _no_podioc_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Options read PODIOC_* variables: keep the caller's shell out of these tests."""
    import os

    for key in list(os.environ):
        if key.startswith("PODIOC_"):
            monkeypatch.delenv(key)
    yield


# -- the StatefulSet -------------------------------------------------------------------


def test_one_replica_replaced_in_order() -> None:
    objs = render()
    sts = objs["StatefulSet"]["spec"]
    assert sts["replicas"] == 1
    assert sts["podManagementPolicy"] == "OrderedReady"
    assert sts["updateStrategy"]["type"] == "RollingUpdate"
    assert sts["serviceName"] == objs["Service"]["metadata"]["name"]
    labels = sts["template"]["metadata"]["labels"]
    assert sts["selector"]["matchLabels"].items() <= labels.items()
    assert objs["Service"]["spec"]["selector"] == sts["selector"]["matchLabels"]
    assert objs["Service"]["spec"]["clusterIP"] == "None"
    assert "ports" not in objs["Service"]["spec"]


def test_selector_does_not_depend_on_class_or_version() -> None:
    """The selector is immutable: changing image or IOC class must not change it."""
    a = render()["StatefulSet"]["spec"]["selector"]
    b = render(image="other:2.0")["StatefulSet"]["spec"]["selector"]
    assert a == b
    assert set(a["matchLabels"]) == {"app.kubernetes.io/instance",
                                     "app.kubernetes.io/component",
                                     "app.kubernetes.io/managed-by"}


def test_recommended_labels_on_every_object() -> None:
    for obj in render().values():
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "demo-device"
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/component"] == "ioc"
        assert labels["app.kubernetes.io/part-of"] == "bl01"  # demo.yaml: deploy.beamline
        assert labels["app.kubernetes.io/managed-by"] == "podioc"
        assert labels["app.kubernetes.io/version"] == __version__
        assert labels["podioc.io/beamline"] == "bl01"
        assert obj["metadata"]["namespace"] == "podioc"


@pytest.mark.parametrize(("path", "expected"), [
    ("hostNetwork", True),
    ("dnsPolicy", "ClusterFirstWithHostNet"),
    ("hostPID", False),
    ("hostIPC", False),
    ("enableServiceLinks", False),
    ("automountServiceAccountToken", False),
    ("serviceAccountName", "demo"),
    ("terminationGracePeriodSeconds", 30),
    ("restartPolicy", "Always"),  # SYSRESET exits 75 and relies on the restart
    ("securityContext.runAsNonRoot", True),
    ("securityContext.runAsUser", 10001),
    ("securityContext.runAsGroup", 10001),
    ("securityContext.fsGroup", 10001),
    ("securityContext.seccompProfile.type", "RuntimeDefault"),
    ("nodeSelector", {"podioc.io/beamline": "bl01"}),
    ("tolerations", [{"key": "podioc.io/beamline", "operator": "Equal", "value": "bl01",
                      "effect": "NoSchedule"}]),
    ("containers.0.securityContext.allowPrivilegeEscalation", False),
    ("containers.0.securityContext.privileged", False),
    ("containers.0.securityContext.readOnlyRootFilesystem", True),
    ("containers.0.securityContext.capabilities", {"drop": ["ALL"]}),
    ("containers.0.securityContext.runAsNonRoot", True),
    ("containers.0.args", ["run", "/etc/podioc/instance/demo.yaml"]),
    ("containers.0.resources.requests", {"cpu": "100m", "memory": "128Mi"}),
    ("containers.0.resources.limits", {"cpu": "1", "memory": "512Mi"}),
    ("containers.0.imagePullPolicy", "Always"),
    ("containers.0.terminationMessagePolicy", "FallbackToLogsOnError"),
])
def test_pod_spec_setting(path: str, expected: Any) -> None:
    value: Any = pod(render())
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    assert value == expected


def test_no_ports_declared() -> None:
    """hostNetwork turns container ports into host ports, which would stop two IOCs
    (sharing the CA UDP port, as EPICS servers on one host do) from sharing a node."""
    assert "ports" not in container(render())


def test_volumes_tmp_config_autosave() -> None:
    objs = render()
    vols = {v["name"]: v for v in pod(objs)["volumes"]}
    mounts = {m["name"]: m for m in container(objs)["volumeMounts"]}
    assert vols["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert vols["config"]["configMap"]["name"] == objs["ConfigMap"]["metadata"]["name"]
    assert mounts["config"] == {"name": "config", "mountPath": "/etc/podioc/instance",
                                "readOnly": True}
    assert "autosave" not in vols  # from the claim template
    (claim,) = objs["StatefulSet"]["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "autosave"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "64Mi"
    assert mounts["autosave"]["mountPath"] == "/var/lib/podioc/autosave"
    assert env_of(objs)["PODIOC_AUTOSAVE_DIR"] == "/var/lib/podioc/autosave"


def test_existing_autosave_claim() -> None:
    objs = render(autosave_claim="bl01-autosave", autosave_size="1Gi")
    assert "volumeClaimTemplates" not in objs["StatefulSet"]["spec"]
    vols = {v["name"]: v for v in pod(objs)["volumes"]}
    assert vols["autosave"]["persistentVolumeClaim"] == {"claimName": "bl01-autosave"}


def test_probes() -> None:
    c = container(render())
    ready = ["podioc", "probe", "DEMO:", "--protocol", "ca", "--ready", "--timeout", "5"]
    assert c["startupProbe"]["exec"]["command"] == ready
    assert c["readinessProbe"]["exec"]["command"] == ready
    assert c["livenessProbe"]["exec"]["command"] == ["podioc", "probe", "DEMO:", "--protocol",
                                                     "ca", "--timeout", "5"]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c[kind]
        # podioc probe gives up before the kubelet kills it
        assert float(probe["exec"]["command"][-1]) < probe["timeoutSeconds"]
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180


def test_probe_uses_pva_when_ca_is_not_served(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\nprotocols: [pva]\n")
    assert "pva" in container(render(path))["livenessProbe"]["exec"]["command"]


def test_env_from_epics_block_and_prefix(tmp_path: Path) -> None:
    path = write_config(tmp_path, (
        "ioc: ioc.py:X\nprefix: 'BL01:T:'\nepics:\n  EPICS_CA_SERVER_PORT: 5070\n"
        "  EPICS_CAS_INTF_ADDR_LIST: 10.0.0.5\ndeploy:\n  env: {PODIOC_LOG_LEVEL: DEBUG}\n"))
    env = env_of(render(path))
    assert env["EPICS_CA_SERVER_PORT"] == "5070"
    assert env["EPICS_CAS_INTF_ADDR_LIST"] == "10.0.0.5"
    assert env["PODIOC_PREFIX"] == "BL01:T:"
    assert env["PODIOC_TARGET"] == "/etc/podioc/instance/bench.yaml"
    assert env["PODIOC_LOG_LEVEL"] == "DEBUG"
    assert all(isinstance(v, str) for v in env.values())


# -- the ConfigMap ---------------------------------------------------------------------


def test_configmap_points_into_the_image() -> None:
    objs = render()
    text = objs["ConfigMap"]["data"]["demo.yaml"]
    assert "# Instance config of the demo IOC." in text  # comments kept
    cfg = config_mod.parse(yaml.safe_load(text), "cm", Path("/etc/podioc/instance"))
    assert cfg.ioc == "/iocs/demo/ioc.py:DemoDevice"
    original = config_mod.load(DEMO)
    assert replace(cfg, ioc=original.ioc, source=original.source,
                   base_dir=original.base_dir) == original


def test_config_hash_in_pod_template() -> None:
    objs = render()
    text = objs["ConfigMap"]["data"]["demo.yaml"]
    digest = hashlib.sha256(text.encode()).hexdigest()
    template = objs["StatefulSet"]["spec"]["template"]["metadata"]["annotations"]
    assert template[manifests.CONFIG_HASH_ANNOTATION] == digest


def test_config_change_restarts_the_ioc(tmp_path: Path) -> None:
    a = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\nargs: {gain: 1}\n", "a")
    b = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\nargs: {gain: 2}\n", "b")
    key = manifests.CONFIG_HASH_ANNOTATION

    def digest(path: Path) -> str:
        ann = render(path, code_dir="/iocs/x/")["StatefulSet"]["spec"]["template"]
        return str(ann["metadata"]["annotations"][key])

    assert digest(a) != digest(b)


@pytest.mark.parametrize(("ref", "code_dir", "expected"), [
    ("ioc.py:DemoDevice", "/iocs/demo/", "/iocs/demo/ioc.py:DemoDevice"),
    ("ioc.py", "/iocs/demo", "/iocs/demo/ioc.py"),
    ("sub/dev.py:Dev", "/iocs/demo/", "/iocs/demo/sub/dev.py:Dev"),
    ("../shared/dev.py:Dev", "/iocs/demo/", "/iocs/shared/dev.py:Dev"),
    ("/opt/dev.py:Dev", "/iocs/demo/", "/opt/dev.py:Dev"),
    ("mypkg.devices:Dev", "/iocs/demo/", "mypkg.devices:Dev"),
])
def test_ioc_ref_in_image(ref: str, code_dir: str, expected: str) -> None:
    assert podconfig.ioc_ref_in_image(ref, code_dir) == expected


def test_code_dir_from_directory_and_override(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ioc: 'ioc.py:X'   # the class\nprefix: 'P:'\n", "heater")
    objs = render(path)
    text = objs["ConfigMap"]["data"]["bench.yaml"]
    assert yaml.safe_load(text)["ioc"] == "/iocs/heater/ioc.py:X"
    assert "# the class" in text
    objs = render(path, code_dir="/opt/iocs/h")
    assert yaml.safe_load(objs["ConfigMap"]["data"]["bench.yaml"])["ioc"] == "/opt/iocs/h/ioc.py:X"


def test_flow_style_config_is_rewritten_whole(tmp_path: Path) -> None:
    path = write_config(tmp_path, "{ioc: ioc.py:X, prefix: 'P:', args: {a: 1}}\n")
    data = yaml.safe_load(render(path)["ConfigMap"]["data"]["bench.yaml"])
    assert data == {"ioc": "/iocs/mydev/ioc.py:X", "prefix": "P:", "args": {"a": 1}}


# -- namespace, service account, checkov annotations -----------------------------------


def test_namespace_pod_security_labels() -> None:
    ns = manifests.render_namespace("bl01")
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_serviceaccount_without_token() -> None:
    objs = render()
    assert objs["ServiceAccount"]["automountServiceAccountToken"] is False
    assert pod(objs)["serviceAccountName"] == objs["ServiceAccount"]["metadata"]["name"]


def test_checkov_skips_are_annotated_with_reasons() -> None:
    ann = render()["StatefulSet"]["metadata"]["annotations"]
    skips = dict(v.split("=", 1) for k, v in ann.items() if k.startswith("checkov.io/skip"))
    assert set(skips) == {*manifests.HOSTNETWORK_SKIPS, manifests.TAG_SKIP[0]}
    assert all(len(reason) > 30 for reason in skips.values())


def test_digest_image_is_not_pulled_again_and_needs_no_skip() -> None:
    image = "podioc@sha256:" + "0" * 64
    objs = render(image=image)
    assert container(objs)["image"] == image
    assert container(objs)["imagePullPolicy"] == "IfNotPresent"
    ann = objs["StatefulSet"]["metadata"]["annotations"]
    assert manifests.TAG_SKIP[0] not in "".join(ann.values())


def test_deploy_settings_applied(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
ioc: ioc.py:Heater
prefix: 'BL07:HTR:'
deploy:
  namespace: bl07
  image: 'podioc-bl07:1.4.2'
  image_pull_policy: IfNotPresent
  beamline: bl07
  part_of: bl07-controls
  resources: {limits: {memory: 1Gi}}
  tmp_size: 16Mi
  autosave_storage_class: local-nvme
  termination_grace_period: 45
  priority_class: ioc-critical
  tolerations: [{key: dedicated, operator: Exists, effect: NoExecute}]
""")
    objs = render(path)
    p = pod(objs)
    assert objs["StatefulSet"]["metadata"]["namespace"] == "bl07"
    assert p["nodeSelector"] == {"podioc.io/beamline": "bl07"}
    assert p["tolerations"] == [{"key": "dedicated", "operator": "Exists",
                                 "effect": "NoExecute"}]
    assert p["terminationGracePeriodSeconds"] == 45
    assert p["priorityClassName"] == "ioc-critical"
    c = container(objs)
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    labels = objs["StatefulSet"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "bl07-controls"
    assert labels["app.kubernetes.io/version"] == "1.4.2"
    assert labels["app.kubernetes.io/name"] == "heater"
    claim = objs["StatefulSet"]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "local-nvme"


@pytest.mark.parametrize(("deploy", "field"), [
    ({"replicas": 2}, "deploy.replicas"),
    ({"namespace": "Bad_NS"}, "deploy.namespace"),
    ({"image": "has space"}, "deploy.image"),
    ({"image_pull_policy": "Sometimes"}, "deploy.image_pull_policy"),
    ({"code_dir": "relative/dir"}, "deploy.code_dir"),
    ({"resources": {"limits": {"cpu": "lots"}}}, "deploy.resources.limits.cpu"),
    ({"resources": {"limits": {"gpu": 1}}}, "deploy.resources.limits"),
    ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "deploy.tolerations[0].effect"),
    ({"node_selector": {"bad key!": "x"}}, "deploy.node_selector.bad key!"),
    ({"termination_grace_period": 0}, "deploy.termination_grace_period"),
    ({"env": {"PODIOC_PREFIX": "X:"}}, "deploy.env.PODIOC_PREFIX"),
    ({"env": {"EPICS_CA_SERVER_PORT": "5064"}}, "deploy.env.EPICS_CA_SERVER_PORT"),
])
def test_bad_deploy_settings_name_file_field_and_fix(deploy: dict[str, Any], field: str) -> None:
    cfg = replace(config_mod.load(DEMO), deploy=deploy)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert info.value.source == str(DEMO)
    assert info.value.field == field
    assert info.value.fix


def test_too_long_instance_name(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\n", filename="x" * 60 + ".yaml")
    with pytest.raises(ConfigError, match="longer than 52"):
        render(path)


# -- schema validation and Pod Security ------------------------------------------------


def variants(tmp_path: Path) -> list[dict[str, Any]]:
    """Objects of several differently configured instances."""
    pva_only = write_config(tmp_path, (
        "ioc: mypkg.dev:Dev\nprefix: 'X:'\nprotocols: [pva]\n"
        "epics: {EPICS_PVA_SERVER_PORT: 5090}\n"), "pva")
    out: list[dict[str, Any]] = [manifests.render_namespace("podioc")]
    out += render().values()
    out += render(image="podioc@sha256:" + "a" * 64, autosave_claim="saved",
                  priority_class="high", node_selector={}, tolerations=[]).values()
    out += render(pva_only).values()
    return out


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_objects_validate_strictly(tmp_path: Path, version: str) -> None:
    for obj in variants(tmp_path):
        kubernetes_validate.validate(obj, version, strict=True)


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                docs.append((str(path.relative_to(ROOT)), doc))
    return docs


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_files_validate_strictly(version: str) -> None:
    docs = k8s_documents()
    assert {d["kind"] for _, d in docs} >= {"Namespace", "StatefulSet", "ConfigMap",
                                            "ServiceAccount", "Service"}
    for where, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {doc['kind']}: {exc.message}")


_BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}


def pod_security_violations(spec: dict[str, Any]) -> set[str]:
    """The controls of the Pod Security Standards (baseline + restricted) a pod spec breaks."""
    out = set()
    psc = spec.get("securityContext", {})
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            out.add(key)
    for vol in spec.get("volumes", []):
        kinds = set(vol) - {"name"}
        if "hostPath" in kinds:
            out.add("hostPath")
        if kinds - _RESTRICTED_VOLUMES:
            out.add("volumeTypes")
    if any(s.get("name") for s in psc.get("sysctls", [])):
        out.add("sysctls")
    for c in containers:
        sc = c.get("securityContext", {})
        caps = sc.get("capabilities", {})
        if sc.get("privileged"):
            out.add("privileged")
        if set(caps.get("add", [])) - _BASELINE_CAPS:
            out.add("capabilities(baseline)")
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.add("capabilities(restricted)")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            out.add("hostPorts")
        if sc.get("procMount", "Default") != "Default":
            out.add("procMount")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.add("allowPrivilegeEscalation")
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            out.add("runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.add("runAsUser")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.add("seccompProfile")
        for ctx in (sc, psc):
            if {"user", "role"} & set(ctx.get("seLinuxOptions", {})):
                out.add("seLinuxOptions")
    return out


def test_only_hostnetwork_breaks_pod_security_restricted(tmp_path: Path) -> None:
    """So the namespace's warn/audit=restricted reports hostNetwork and nothing else."""
    for obj in variants(tmp_path):
        if obj["kind"] == "StatefulSet":
            assert pod_security_violations(obj["spec"]["template"]["spec"]) == {"hostNetwork"}


def test_pod_security_checker_sees_violations() -> None:
    spec = {"containers": [{"name": "c", "securityContext": {"privileged": True},
                            "ports": [{"containerPort": 1, "hostPort": 1}]}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
    assert pod_security_violations(spec) >= {"privileged", "hostPorts", "hostPath",
                                             "allowPrivilegeEscalation", "runAsNonRoot",
                                             "seccompProfile", "capabilities(restricted)"}


# -- k8s/ is what podioc manifest renders ----------------------------------------------


def regenerate_command() -> str:
    configs = " ".join(str(p.relative_to(ROOT)) for p in instance_configs())
    return f"podioc manifest --kustomize -o k8s {configs}"


def test_k8s_directory_is_up_to_date() -> None:
    configs = instance_configs()
    assert configs, "no instance configs found under iocs/"
    expected = manifest_files.kustomize_tree([load(p) for p in configs])
    actual = {str(p.relative_to(K8S)): p.read_text() for p in K8S.rglob("*")
              if p.is_file() and p.suffix in (".yaml", ".yml")}
    stale = sorted(set(actual) - set(expected))
    wrong = sorted(k for k in expected if actual.get(k) != expected[k])
    if stale or wrong:
        stale_dirs = sorted({f"k8s/{s.split('/')[0]}" for s in stale if "/" in s})
        remove = f"rm -r {' '.join(stale_dirs)} && " if stale_dirs else ""
        pytest.fail(
            "k8s/ differs from what `podioc manifest` renders "
            f"(out of date: {wrong or 'none'}; not rendered any more: {stale or 'none'}).\n"
            f"Regenerate from the repository root (no PODIOC_* variables set):\n"
            f"  {remove}{regenerate_command()}")


# -- the command -----------------------------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``podioc manifest`` through the real command group, stderr kept apart."""
    separate: dict[str, Any] = (
        {"mix_stderr": False}  # click < 8.2 mixes stderr into stdout by default
        if "mix_stderr" in inspect.signature(CliRunner).parameters else {})
    return CliRunner(**separate).invoke(cli, ["manifest", *args], env=env)


def test_cli_prints_all_objects() -> None:
    result = invoke(str(DEMO))
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "ConfigMap", "Service",
                                         "StatefulSet"]
    assert "pin it by digest" in result.stderr


def test_cli_options_and_environment_override_the_config() -> None:
    result = invoke(str(DEMO), "--namespace", "bl02", "--prefix", "BL02:DEMO:",
                    env={"PODIOC_IMAGE": "podioc@sha256:" + "b" * 64,
                         "PODIOC_BEAMLINE": "bl02"})
    assert result.exit_code == 0, result.output
    docs = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    assert docs["Namespace"]["metadata"]["name"] == "bl02"
    c = container(docs)
    assert c["image"].endswith("b" * 64)
    assert {"name": "PODIOC_PREFIX", "value": "BL02:DEMO:"} in c["env"]
    assert "BL02:DEMO:" in c["livenessProbe"]["exec"]["command"]
    assert yaml.safe_load(docs["ConfigMap"]["data"]["demo.yaml"])["prefix"] == "BL02:DEMO:"
    assert pod(docs)["nodeSelector"] == {"podioc.io/beamline": "bl02"}
    assert "pin it by digest" not in result.stderr


def test_cli_writes_files(tmp_path: Path) -> None:
    result = invoke(str(DEMO), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "configmap.yaml", "namespace.yaml", "service.yaml", "serviceaccount.yaml",
        "statefulset.yaml"]


def test_cli_kustomize_accumulates_and_checks(tmp_path: Path) -> None:
    other = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'Q:'\ndeploy: {namespace: bl09}\n",
                         filename="other.yaml")
    root = tmp_path / "k8s"
    assert invoke("--kustomize", "-o", str(root), str(DEMO)).exit_code == 0
    assert invoke("--kustomize", "-o", str(root), str(other)).exit_code == 0
    top = yaml.safe_load((root / "kustomization.yaml").read_text())
    assert top["resources"] == ["base", "demo", "other"]
    base = yaml.safe_load((root / "base" / "kustomization.yaml").read_text())
    assert base["resources"] == ["namespace-bl09.yaml", "namespace-podioc.yaml"]
    assert invoke("--kustomize", "--check", "-o", str(root), str(DEMO)).exit_code == 0
    (root / "demo" / "statefulset.yaml").write_text("edited\n")
    result = invoke("--kustomize", "--check", "-o", str(root), str(DEMO))
    assert result.exit_code == 1
    assert "statefulset.yaml" in result.stderr


def test_cli_errors_are_clean(tmp_path: Path) -> None:
    result = invoke("iocs/demo/ioc.py")
    assert result.exit_code != 0 and "instance config" in result.output
    bad = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\ndeploy: {replica: 2}\n")
    result = invoke(str(bad))
    assert result.exit_code == 1
    assert f"{bad}: deploy.replica: unknown setting" in result.output
    assert "Traceback" not in result.output
    result = invoke(str(DEMO), str(bad), "--prefix", "X:")
    assert result.exit_code == 2 and "one TARGET" in result.output


def test_access_rules_file_is_carried_inline_in_the_configmap(tmp_path: Path) -> None:
    rules = "ASG(DEFAULT) {\n  RULE(1, READ)\n}\n"
    path = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\n"
                                  "access:\n  file: rules.acf\n")
    (path.parent / "rules.acf").write_text(rules)
    data = render(path)["ConfigMap"]["data"]
    mounted = yaml.safe_load(next(iter(data.values())))
    assert mounted["access"] == {"rules": rules}
    before = render(path)["StatefulSet"]["spec"]["template"]["metadata"]["annotations"]
    (path.parent / "rules.acf").write_text(rules.replace("READ", "WRITE"))
    after = render(path)["StatefulSet"]["spec"]["template"]["metadata"]["annotations"]
    assert before != after, "a rules change must change the pod template (restart)"


def test_missing_access_rules_file_names_the_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ioc: ioc.py:X\nprefix: 'P:'\naccess:\n  file: nope.acf\n")
    with pytest.raises(ConfigError, match=r"access\.file"):
        render(path)
