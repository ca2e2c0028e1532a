"""The rendered pod spec runs: its container started in Docker exactly as the pod says.

The StatefulSet's pod template is translated into ``docker run`` settings
(host network, uid/gid/fsGroup, all capabilities dropped, no-new-privileges,
read-only root filesystem, /tmp as a tmpfs of the emptyDir's size, the
ConfigMap's files mounted read-only at the same path, a writable autosave
volume, the same args, env and resource limits). Anything in the pod spec
the translation does not know fails the test, so it keeps up with the
renderer. Then the startup, readiness and liveness probe commands are run
inside the container, the IOC's PVs are read and written from the host over
CA (pyepics) and PVA (p4p), and the container is stopped within the pod's
termination grace period.

Network: loopback only. The IOC gets free ports and sends beacons to
127.255.255.255 only; the clients search by broadcast on 127.255.255.255
(as the probes inside the container do when no interface is pinned).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker_support import SESSION, TEST_LABEL, Endpoint, assert_heartbeat_advances

from harness import PyepicsClient, poll_until, pva_client, unique_prefix
from podioc import config as config_mod
from podioc.deploy import manifests
from podioc.deploy.settings import load_settings

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "iocs" / "demo" / "demo.yaml"
MANAGED_LABEL = {"io.podioc.managed": "true", TEST_LABEL: SESSION}
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}

#: Pod-level fields that only steer scheduling or the API (no container equivalent), and
#: why ignoring them here is right.
_SCHEDULING_ONLY = {
    "serviceAccountName": "its token is not mounted (automountServiceAccountToken: false)",
    "nodeSelector": "scheduling",
    "tolerations": "scheduling",
    "priorityClassName": "scheduling",
    "dnsPolicy": "with host networking the container uses the host's resolver, as here",
}


def quantity(text: str) -> float:
    """A Kubernetes quantity (``250m``, ``64Mi``, ``1``) as a number."""
    match = re.fullmatch(r"([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?", text)
    assert match, f"unsupported quantity {text!r}"
    number, unit = float(match.group(1)), match.group(2) or ""
    return number / 1000 if unit == "m" else number * _UNITS[unit]


def docker_run_kwargs(pod: dict[str, Any], configmap: dict[str, Any],
                      workdir: Path) -> dict[str, Any]:
    """``docker.containers.run`` keyword arguments doing what the pod spec says."""
    pod = dict(pod)
    for key in _SCHEDULING_ONLY:
        pod.pop(key, None)
    assert pod.pop("hostNetwork") is True
    assert pod.pop("hostPID") is False and pod.pop("hostIPC") is False
    assert pod.pop("enableServiceLinks") is False  # Docker injects no service variables
    assert pod.pop("automountServiceAccountToken") is False  # nothing to mount
    grace = pod.pop("terminationGracePeriodSeconds")
    # SYSRESET exits 75 for the kubelet to restart the IOC: Docker's "always" does the same
    assert pod.pop("restartPolicy") == "Always"
    psc = dict(pod.pop("securityContext"))
    (c,) = pod.pop("containers")
    c = dict(c)
    volumes = {v["name"]: v for v in pod.pop("volumes")}
    assert not pod, f"pod spec fields this test cannot reproduce yet: {sorted(pod)}"

    sc = dict(c.pop("securityContext"))
    assert psc.pop("runAsNonRoot") is True and sc.pop("runAsNonRoot") is True
    uid = sc.pop("runAsUser", psc.pop("runAsUser"))
    gid = sc.pop("runAsGroup", psc.pop("runAsGroup"))
    psc.pop("runAsUser", None)
    psc.pop("runAsGroup", None)
    fs_group = psc.pop("fsGroup")
    assert psc.pop("fsGroupChangePolicy") == "OnRootMismatch"
    for ctx in (psc, sc):  # Docker's default seccomp profile is the runtime default
        assert ctx.pop("seccompProfile", {"type": "RuntimeDefault"}) == {
            "type": "RuntimeDefault"}
    assert not psc, f"pod securityContext fields not reproduced: {sorted(psc)}"
    assert sc.pop("privileged") is False
    assert sc.pop("allowPrivilegeEscalation") is False
    read_only = sc.pop("readOnlyRootFilesystem")
    assert sc.pop("capabilities") == {"drop": ["ALL"]}
    assert not sc, f"container securityContext fields not reproduced: {sorted(sc)}"

    binds: dict[str, dict[str, str]] = {}
    tmpfs: dict[str, str] = {}
    for mount in c.pop("volumeMounts"):
        vol = dict(volumes.pop(mount["name"], {"name": mount["name"], "persistentVolumeClaim": {}}))
        vol.pop("name")
        (kind, source), = vol.items()
        if kind == "configMap":
            assert source["name"] == configmap["metadata"]["name"]
            assert mount.get("readOnly") is True
            host = workdir / "configmap"
            host.mkdir(mode=0o755)
            for key, text in configmap["data"].items():
                (host / key).write_text(text)
                (host / key).chmod(source["defaultMode"])
            binds[str(host)] = {"bind": mount["mountPath"], "mode": "ro"}
        elif kind == "emptyDir":
            assert source["medium"] == "Memory"
            size = int(quantity(source["sizeLimit"]))
            tmpfs[mount["mountPath"]] = f"size={size},mode=1777"
        elif kind == "persistentVolumeClaim":
            # A fresh volume as the cluster gives it: root-owned, group fsGroup (setgid).
            host = workdir / mount["name"]
            host.mkdir()
            try:
                os.chown(host, 0, fs_group)
                host.chmod(0o2775)
            except PermissionError:
                host.chmod(0o777)
            binds[str(host)] = {"bind": mount["mountPath"],
                                "mode": "ro" if mount.get("readOnly") else "rw"}
        else:
            pytest.fail(f"volume type {kind} not reproduced")
    assert not volumes, f"volumes never mounted: {sorted(volumes)}"

    resources = c.pop("resources")
    kwargs: dict[str, Any] = {
        "image": c.pop("image"),
        "command": c.pop("args"),  # no `command` in the pod: the image's ENTRYPOINT runs
        "environment": _environment(c.pop("env")),
        "network_mode": "host",
        "ipc_mode": "private",
        "user": f"{uid}:{gid}",
        "group_add": [str(fs_group)],
        "cap_drop": ["ALL"],
        "privileged": False,
        "security_opt": ["no-new-privileges"],
        "read_only": read_only,
        "tmpfs": tmpfs,
        "volumes": binds,
        "mem_limit": int(quantity(resources["limits"]["memory"])),
        "mem_reservation": int(quantity(resources["requests"]["memory"])),
        "nano_cpus": int(quantity(resources["limits"]["cpu"]) * 1e9),
        "stop_signal": "SIGTERM",
        "restart_policy": {"Name": "always"},
        "labels": MANAGED_LABEL,
        "name": f"podioc-podspec-{uuid.uuid4().hex[:10]}",
    }
    assert "command" not in c, "the pod overrides the image's ENTRYPOINT"
    c.pop("name")
    c.pop("imagePullPolicy")  # the image is local
    c.pop("terminationMessagePolicy")
    probes = {k: c.pop(k) for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert not c, f"container fields not reproduced: {sorted(c)}"
    kwargs["_probes"] = probes
    kwargs["_grace"] = grace
    return kwargs


def instance(tmp_path: Path, image: str) -> tuple[Endpoint, Path]:
    """The demo as a new instance: unique prefix, free ports, beacons to loopback only,
    this image. The ports and addresses are set through the config's ``epics:``
    block, so they reach the container the way a cluster's would: by the pod's env."""
    endpoint = Endpoint.fresh(unique_prefix("PODSPEC"))
    demo = yaml.safe_load(DEMO.read_text())
    data = {
        "ioc": demo["ioc"], "prefix": endpoint.prefix, "args": demo.get("args", {}),
        "protocols": ["ca", "pva"],
        "epics": endpoint.server_env(),
        "autosave": {"debounce": 0.2},
        "deploy": {"image": image, "code_dir": "/iocs/demo/"},
    }
    path = tmp_path / "config" / "podspec.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return endpoint, path


def run_probe(container: Any, probe: dict[str, Any]) -> tuple[int, str, float]:
    start = time.monotonic()
    code, output = container.exec_run(probe["exec"]["command"])
    return code, output.decode(errors="replace"), time.monotonic() - start


def test_rendered_pod_spec_runs_in_docker(engine: Any, podioc_image: str,
                                          tmp_path: Path) -> None:
    endpoint, path = instance(tmp_path, podioc_image)
    cfg = config_mod.load(path)
    objects = {o["kind"]: o for o in manifests.render_instance(cfg, path.read_text(),
                                                                load_settings(cfg))}
    pod = objects["StatefulSet"]["spec"]["template"]["spec"]
    kwargs = docker_run_kwargs(pod, objects["ConfigMap"], tmp_path)
    probes, grace = kwargs.pop("_probes"), kwargs.pop("_grace")
    assert kwargs["environment"]["EPICS_CA_SERVER_PORT"] == str(endpoint.ca_port)

    container = engine.containers.create(**kwargs)
    try:  # removed by id whatever happens
        container.start()
        _exercise(container, endpoint, probes, tmp_path / "autosave")
        started = time.monotonic()
        container.stop(timeout=grace)
        took = time.monotonic() - started
        state = engine.api.inspect_container(container.id)["State"]
        logs = container.logs().decode(errors="replace")
        assert state["ExitCode"] == 0, f"unclean stop ({state}):\n{logs[-3000:]}"
        assert took < grace, f"shutdown took {took:.1f} s, grace is {grace} s"
    finally:
        container.remove(force=True)


def _exercise(container: Any, endpoint: Endpoint, probes: dict[str, dict[str, Any]],
              autosave: Path) -> None:
    prefix = endpoint.prefix
    def logs() -> str:
        return str(container.logs().decode(errors="replace"))[-4000:]

    # startup probe: every periodSeconds until it passes (bounded for the test)
    startup = probes["startupProbe"]
    deadline = time.monotonic() + min(120, startup["periodSeconds"] * startup["failureThreshold"])
    while True:
        container.reload()
        assert container.status == "running", f"container exited:\n{logs()}"
        code, out, took = run_probe(container, startup)
        assert took < startup["timeoutSeconds"], f"startup probe took {took:.1f} s"
        if code == 0:
            break
        assert time.monotonic() < deadline, f"startup probe never passed: {out}\n{logs()}"
        time.sleep(startup["periodSeconds"])
    serving = re.search(r"CA port (\d+), PVA port (\d+)", logs())
    assert serving and serving.groups() == (str(endpoint.ca_port), str(endpoint.pva_port)), logs()
    for kind in ("readinessProbe", "livenessProbe"):
        code, out, took = run_probe(container, probes[kind])
        assert code == 0, f"{kind} failed: {out}\n{logs()}"
        assert took < probes[kind]["timeoutSeconds"], f"{kind} took {took:.1f} s"

    # what the security settings mean inside the container
    status = container.exec_run(["cat", "/proc/self/status"]).output.decode()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == "10001" and fields["Gid"].split()[0] == "10001"
    assert "10001" in fields["Groups"].split()
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"  # filter mode: the runtime's default profile
    write = "import sys; open(sys.argv[1] + '/probe-write', 'w').write('x')"
    assert container.exec_run(["python3", "-c", write, "/"]).exit_code != 0  # read-only root
    assert container.exec_run(["python3", "-c", write, "/etc/podioc/instance"]).exit_code != 0
    assert container.exec_run(["python3", "-c", write, "/tmp"]).exit_code == 0
    mounts = container.exec_run(["cat", "/proc/mounts"]).output.decode()
    assert re.search(r"^tmpfs /tmp tmpfs \S*size=65536k", mounts, re.M), mounts

    # clients on the host find it by broadcast on loopback (127.255.255.255)
    with PyepicsClient(endpoint.ca_client_env()) as ca, pva_client(endpoint.pva_conf()) as pva:
        assert_heartbeat_advances(lambda: ca.get(prefix + "HEARTBEAT")["value"], "CA")
        ca.put(prefix + "SETPOINT", 42.5)
        assert ca.get(prefix + "SETPOINT")["value"] == pytest.approx(42.5)
        assert float(pva.get(prefix + "SETPOINT", timeout=5)) == pytest.approx(42.5)
        pva.put(prefix + "GAIN", 33, timeout=5)
        assert int(pva.get(prefix + "GAIN", timeout=5)) == 33
        assert ca.get(prefix + "GAIN")["value"] == 33

    # autosave wrote the new values to its volume (as uid 10001, through fsGroup)
    def saved() -> str:
        files = [p for p in autosave.iterdir() if p.suffix == ".sav"]
        text = files[0].read_text() if files else ""
        return text if re.search(r"SETPOINT 42\.5\b", text) else ""

    poll_until(saved, timeout=15, message=f"SETPOINT 42.5 autosaved (IOC log:\n{logs()})")


def _environment(env: list[dict[str, Any]]) -> dict[str, str]:
    """The container's env; downward-API fields resolve as on a hostNetwork pod,
    where the pod IP is the node's IP (both the host's loopback here)."""
    out = {}
    for e in env:
        if "value" in e:
            out[e["name"]] = e["value"]
        else:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in ("status.hostIP", "status.podIP"), path
            out[e["name"]] = "127.0.0.1"
    return out
