"""Nothing of a run survives it: namespaces, their veth pairs and bridge, processes.

(Named ``zz`` so that it runs after the other namespace tests of the directory.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import netns_support
import pytest
import topology

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

CHILD = r"""
import json, sys, time
sys.path.insert(0, {here!r})
import topology
topo = topology.Topology()
node = topo.add_node()
topo.add_client()
proc = node.run(["sleep", "300"])
print(json.dumps({{"tag": topo.tag, "pid": proc.pid}}), flush=True)
mode = sys.argv[1]
if mode == "fail":
    raise RuntimeError("a test failed")
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _ours(tag: str) -> list[str]:
    return [ns for ns in topology.list_namespaces() if ns.startswith(tag + "-")]


@pytest.mark.parametrize("how", ["fail", "sigterm", "sigint", "sigkill"])
def test_an_interrupted_run_leaves_nothing(netns: None, how: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(
        here=str(netns_support.HERE)), "fail" if how == "fail" else "wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        assert len(_ours(info["tag"])) == 3  # bridge, node, client
        if how != "fail":
            child.send_signal({"sigterm": signal.SIGTERM, "sigint": signal.SIGINT,
                               "sigkill": signal.SIGKILL}[how])
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if how == "sigkill":
        # nothing in the process could clean up: the next run's sweep does
        assert _ours(info["tag"]), "expected leftovers after SIGKILL"
        removed = topology.sweep_stale()
        assert set(removed) >= {f"{info['tag']}-br", f"{info['tag']}-n1"}
    assert _ours(info["tag"]) == []
    deadline = time.monotonic() + 5
    while _alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(info["pid"]), "the process started in the namespace survived"


def test_nothing_of_this_run_is_left(netns: None) -> None:
    assert topology.run_leftovers() == []
    assert netns_support.LIVE == []
    # the host's own namespace never had any of our interfaces
    links = topology.sh("ip", "-o", "link", "show").stdout
    assert topology.RUN_TAG not in links
