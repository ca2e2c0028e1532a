"""``podioc up / ps / logs / down`` through the real entry point."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker_support import REPO, Endpoint, podioc_cli

from harness import PyepicsClient, poll_until
from podioc.deploy.containers import INSTANCE_LABEL, MANAGED_LABEL

pytestmark = pytest.mark.docker


@pytest.fixture
def instance(tmp_path: Path, engine: Any) -> Iterator[tuple[Path, Endpoint, str]]:
    """A copy of the demo as a new instance (unique name, prefix and ports).

    Its ports are in the config's epics: block; the beacon settings come from
    the shell (``podioc up`` passes EPICS_* through). Removed afterwards by label.
    """
    name = f"uptest-{uuid.uuid4().hex[:8]}"
    ioc_dir = tmp_path / "upioc"
    ioc_dir.mkdir()
    shutil.copy2(REPO / "iocs" / "demo" / "ioc.py", ioc_dir / "ioc.py")
    ep = Endpoint.fresh()
    server = ep.server_env()
    ports = {k: server.pop(k) for k in list(server) if k.endswith("_PORT")}
    config = {"ioc": "ioc.py:DemoDevice", "prefix": ep.prefix, "epics": ports,
              "args": {"noise": 0.0}}
    path = ioc_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    for item in (tmp_path, ioc_dir):  # the container's user (10001) reads the mount
        item.chmod(0o755)
    for item in ioc_dir.iterdir():
        item.chmod(0o644)
    yield path, ep, name
    for container in engine.containers.list(
            all=True, filters={"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={name}"]}):
        container.remove(force=True)
    for volume in engine.volumes.list(filters={"label": f"{INSTANCE_LABEL}={name}"}):
        volume.remove(force=True)


def _containers(engine: Any, name: str) -> list[Any]:
    return list(engine.containers.list(
        all=True, filters={"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={name}"]}))


def test_up_ps_logs_down(engine: Any, test_image: str,
                         instance: tuple[Path, Endpoint, str]) -> None:
    path, ep, name = instance
    shell = ep.server_env()
    beacons = {k: v for k, v in shell.items() if not k.endswith("_PORT")}

    first = podioc_cli("up", str(path), "--image", test_image, env=beacons)
    assert first.returncode == 0, first.stderr
    assert f"Started {name}" in first.stdout
    assert "warning" not in first.stderr
    again = podioc_cli("up", str(path), "--image", test_image, env=beacons)
    assert again.returncode == 0, again.stderr
    assert f"Replaced {name}" in again.stdout
    [container] = _containers(engine, name)

    attrs = engine.api.inspect_container(container.id)
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "host"
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert "/tmp" in host["Tmpfs"]
    assert attrs["Config"]["User"] == "10001:10001"
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    assert env["PODIOC_PREFIX"] == ep.prefix
    assert env["PODIOC_TARGET"] == f"/iocs/upioc/{name}.yaml"
    assert env["EPICS_CA_SERVER_PORT"] == str(ep.ca_port)  # from the config's epics: block
    assert env["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] == "NO"  # from the shell
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/iocs/upioc"]["RW"] is False
    assert mounts["/var/lib/podioc/autosave"]["Type"] == "volume"

    # The image's own HEALTHCHECK (podioc probe, PODIOC_PREFIX) turns healthy.
    def healthy() -> bool:
        proc = podioc_cli("ps", "--json")
        assert proc.returncode == 0, proc.stderr
        rows = [r for r in json.loads(proc.stdout) if r["instance"] == name]
        assert len(rows) == 1 and rows[0]["state"] == "running", rows
        assert rows[0]["health"] != "unhealthy", podioc_cli("logs", name).stdout[-3000:]
        return bool(rows[0]["health"] == "healthy")

    poll_until(healthy, timeout=90, interval=0.5, message=f"{name} healthy")
    table = podioc_cli("ps")
    assert name in table.stdout and ep.prefix in table.stdout

    with PyepicsClient(ep.ca_client_env()) as ca:
        ca.put(f"{ep.prefix}LABEL", "from the host")
        assert ca.get(f"{ep.prefix}LABEL", timeout=10)["value"] == "from the host"

    logs = podioc_cli("logs", name, "--tail", "200")
    assert logs.returncode == 0 and "serving" in logs.stdout + logs.stderr

    down = podioc_cli("down", str(path), "--timeout", "20")
    assert down.returncode == 0, down.stderr
    assert f"Stopped {name}" in down.stdout
    assert _containers(engine, name) == []
    gone = podioc_cli("down", name)
    assert gone.returncode == 1 and f"no podioc container runs instance {name!r}" in gone.stderr


def test_up_reports_a_missing_image(instance: tuple[Path, Endpoint, str]) -> None:
    path, _, _ = instance
    proc = podioc_cli("up", str(path), "--image", f"podioc-test-missing:{uuid.uuid4().hex[:6]}")
    assert proc.returncode == 1
    assert "is not in the local image store" in proc.stderr
    assert "podioc build" in proc.stderr


def test_down_needs_a_name_or_all() -> None:
    proc = podioc_cli("down")
    assert proc.returncode == 2 and "--all" in proc.stderr
