"""A device that streams to a negotiated port: GigE Vision cameras on the beamline subnet.

Topology: camera namespaces cam1 (``arv-fake-gv-camera-0.8``, no loss) and
cam2 (``-r 10``: 10 of every 1000 stream packets dropped) on the subnet;
node n1 runs camera IOCs with host networking; a pod behind n1's NAT runs one
without. The IOC opens its stream socket on a free port and writes that port
and its address into the camera (GVCP); the camera then sends GVSP there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns_fixtures import TopologyFactory
from netns_support import HERE, PY, REPO, NsIoc, checks, clean_env, doctor, unique_prefix
from topology import Host, Topology

from harness.gige_emulator import emulator_path

pytestmark = [pytest.mark.netns, pytest.mark.gige, pytest.mark.timeout(300)]

GIGE_IOC = REPO / "iocs" / "gige" / "ioc.py"
CLIENT = HERE / "gige_client.py"


@dataclass
class Beamline:
    topo: Topology
    node: Host
    client: Host
    cam1: Host
    cam2: Host
    log_dir: Path


def start_emulator(host: Host, log_dir: Path, *args: str) -> None:
    log = open(log_dir / f"emulator-{host.ns}.log", "w")   # noqa: SIM115 (lives with the process)
    host.run([emulator_path(), "-i", str(host.ip), *args], stdout=log,
             stderr=subprocess.STDOUT)
    wait_answering(host, str(host.ip))


def wait_answering(host: Host, address: str) -> None:
    code = ("import sys, time; from podioc.gige import discover\n"
            "end = time.monotonic() + 15\n"
            "while time.monotonic() < end:\n"
            f"    if discover([{address!r}], timeout=0.2, attempts=1): sys.exit(0)\n"
            "sys.exit(1)\n")
    done = host.call([PY, "-c", code], env=clean_env(), timeout=30)
    assert done.returncode == 0, f"emulator at {address} not answering: {done.stderr}"


def camera_ioc(host: Host, camera: Host, log_dir: Path, stem: str, **args: Any) -> NsIoc:
    prefix = unique_prefix(stem)
    config = log_dir / f"{prefix.rstrip(':')}.yaml"
    lines = [f"ioc: {GIGE_IOC}:GigECamera", f'prefix: "{prefix}"', "args:",
             f"  camera: {camera.ip}"] + [f"  {k}: {v}" for k, v in args.items()]
    config.write_text("\n".join(lines) + "\n")
    return NsIoc(host, prefix, log_dir, target=config).start()


def measure(host: Host, ioc: NsIoc, duration: float,
            conf: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"prefix": ioc.prefix, "duration": duration}
    if conf is not None:
        spec["conf"] = conf
    done = host.call([PY, str(CLIENT), json.dumps(spec)], env=clean_env(),
                     timeout=duration + 60)
    assert done.returncode == 0, f"client failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def beamline(module_topology: TopologyFactory, log_dir: Path) -> Iterator[Beamline]:
    emulator_path()
    topo = module_topology()
    node, client = topo.add_node(), topo.add_client()
    cam1, cam2 = topo.add_node("cam1"), topo.add_node("cam2")
    start_emulator(cam1, log_dir, "-s", "CAM1")
    start_emulator(cam2, log_dir, "-s", "CAM2", "-r", "10")
    yield Beamline(topo, node, client, cam1, cam2, log_dir)


def test_discovery_by_broadcast_needs_a_route(beamline: Beamline) -> None:
    code = ("import json; from podioc.gige import discover\n"
            "print(json.dumps([[d.address, d.serial] for d in discover(timeout=0.5)]))\n")
    node = beamline.node
    node.ip_cmd("route", "add", "default", "dev", "eth0")
    try:
        done = node.call([PY, "-c", code], env=clean_env(), timeout=30)
        found = sorted(map(tuple, json.loads(done.stdout)))
    finally:
        node.ip_cmd("route", "del", "default", "dev", "eth0")
    assert found == [(beamline.cam1.ip, "CAM1"), (beamline.cam2.ip, "CAM2")]


def test_host_networking_full_rate_no_loss(beamline: Beamline) -> None:
    ioc = camera_ioc(beamline.node, beamline.cam1, beamline.log_dir, "HN")
    try:
        result = measure(beamline.client, ioc, duration=5.0)
    finally:
        ioc.stop()
    assert result["alarm_at"] is None, result
    # the emulator sends 25 frames/s: the IOC receives them all (5 s, margin for the
    # acquisition start); a monitoring client may see fewer when the host is loaded
    # (p4p squashes monitor updates it cannot take)
    assert result["stats"]["StreamFrames"] >= 110, json.dumps(result)
    assert result["frames"] >= 60, json.dumps(result)
    assert result["bad"] == [] and result["checked"] >= 5, result
    assert result["stats"]["StreamFramesIncomplete"] == 0, result
    assert result["stats"]["StreamPacketsMissing"] == 0, result


def test_host_networking_counts_lost_packets(beamline: Beamline) -> None:
    ioc = camera_ioc(beamline.node, beamline.cam2, beamline.log_dir, "LS")
    try:
        result = measure(beamline.client, ioc, duration=4.0)
    finally:
        ioc.stop()
    stats = result["stats"]
    assert stats["StreamPacketsMissing"] >= stats["StreamFramesIncomplete"] > 0, result
    assert result["bad"] == [], result             # incomplete frames are never served
    assert result["frames"] > 0, result


def test_two_cameras_on_one_node_stream_at_once(beamline: Beamline) -> None:
    ioc1 = camera_ioc(beamline.node, beamline.cam1, beamline.log_dir, "TA")
    ioc2 = camera_ioc(beamline.node, beamline.cam2, beamline.log_dir, "TB")
    try:
        procs = [beamline.client.run(
            [PY, str(CLIENT), json.dumps({"prefix": ioc.prefix, "duration": 4.0})],
            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for ioc in (ioc1, ioc2)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        ioc1.stop()
        ioc2.stop()
    assert results[0]["port"] != results[1]["port"], results
    for result in results:          # 4 s at 25 Hz each; cam2 loses 1 % of its packets
        stats = result["stats"]
        assert stats["StreamFrames"] + stats["StreamFramesIncomplete"] >= 80, result
        assert result["alarm_at"] is None and result["bad"] == [], result
    assert results[0]["frames"] >= 40 and results[1]["frames"] > 0, results


def test_behind_nat_the_stream_never_arrives(beamline: Beamline) -> None:
    """GVCP reaches the camera from the pod (the node masquerades it), the camera
    is told to stream to the node's address and the port the pod opened, but no
    rule forwards that port (it is only known now): the IOC alarms within 2 s."""
    topo, node = beamline.topo, beamline.node
    pod = topo.add_pod(node)
    ioc = camera_ioc(pod, beamline.cam1, beamline.log_dir, "NAT", destination=node.ip)
    try:
        result = measure(pod, ioc, duration=3.0,
                         conf={"EPICS_PVA_ADDR_LIST": "127.0.0.1",
                               "EPICS_PVA_AUTO_ADDR_LIST": "NO"})
    finally:
        ioc.stop()
    port = result["port"]
    assert result["frames"] == 0 and result["stats"]["StreamPackets"] == 0, result
    assert result["alarm_at"] is not None and result["alarm_at"] < 2.0, result
    assert f"negotiated stream port UDP {port}" in result["alarm_message"], result
    assert result["status"] == f"no stream on UDP port {port}", result
    assert f"negotiated stream port UDP {port}" in ioc.log()
    code, report = doctor(pod, clean_env(KUBERNETES_SERVICE_HOST="10.96.0.1",
                                         KUBERNETES_SERVICE_PORT="443"))
    assert code == 1
    assert any("port negotiated at run time (GigE Vision" in m for m in checks(report, "FAIL"))
