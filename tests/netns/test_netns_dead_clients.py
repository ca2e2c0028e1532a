"""Clients that vanish (link down, then killed) lose their CA and PVA slots.

A client behind a downed interface never sends FIN or RST: without keepalive
its circuits stay open forever and, at the client cap, nobody new can
connect. Here the dead-peer timeout is 6 s (production default 60 s) and
EPICS_CA_CONN_TMO 2 s, so the test takes well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from netns_fixtures import TopologyFactory
from netns_support import CLIENT, PY, NsIoc, clean_env, run_client, unique_prefix
from topology import Host

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

DEAD_PEER_TIMEOUT = 6.0


def test_dead_clients_are_dropped(make_topology: TopologyFactory, log_dir: Path,
                                  record_property: Callable[[str, object], None]) -> None:
    """5 CA circuits with channels (2 monitoring) and 5 PVA monitors fill the caps of 5;
    a new CA client from elsewhere is refused. The holder's link goes down and it is
    killed: its connections close within the dead-peer timeout plus a few seconds,
    and the new client is served on both protocols."""
    topo = make_topology()
    node, doomed, other = topo.add_node(), topo.add_client(), topo.add_client()
    prefix = unique_prefix("DC")
    ioc = NsIoc(node, prefix, log_dir, env={
        "PODIOC_MAX_CLIENTS": "5", "PODIOC_DEAD_PEER_TIMEOUT": str(DEAD_PEER_TIMEOUT),
        "EPICS_CA_CONN_TMO": "2"}).start()
    name = prefix + "TEMPERATURE"
    pva_conf = {"EPICS_PVA_ADDR_LIST": str(node.ip), "EPICS_PVA_AUTO_ADDR_LIST": "NO"}
    holder = doomed.run([PY, str(CLIENT), json.dumps({
        "op": "hold", "address": str(node.ip), "ca_port": ioc.ca_port, "name": name,
        "ca": 5, "subscribed": 2, "pva": 5, "conf": pva_conf, "duration": 170})],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert holder.stdout is not None
    ready = json.loads(holder.stdout.readline() or "{}")
    assert ready.get("event") == "ready", holder.stderr.read() if holder.stderr else ""

    ca_env = clean_env(EPICS_CA_ADDR_LIST=str(node.ip), EPICS_CA_AUTO_ADDR_LIST="NO")
    full = run_client(other, {"op": "find_ca", "names": [name], "timeout": 3}, env=ca_env)
    assert full["found"][name] is None, "the cap of 5 was not reached: the test proves nothing"
    assert held(node, ioc.pva_port, str(doomed.ip)) == 5  # the PVA cap is full too

    doomed.ip_cmd("link", "set", "eth0", "down")
    down = time.monotonic()
    holder.kill()
    holder.wait(10)
    gone: dict[int, float] = {}
    while len(gone) < 2:
        for port in (ioc.ca_port, ioc.pva_port):
            if port not in gone and not held(node, port, str(doomed.ip)):
                gone[port] = time.monotonic() - down
        assert time.monotonic() - down < 60, f"dead connections still open: {gone}"
        time.sleep(0.2)
    ca = run_client(other, {"op": "find_ca", "names": [name], "timeout": 15}, env=ca_env)
    assert ca["found"][name] is not None, ca
    pva = run_client(other, {"op": "find_pva", "names": [name], "timeout": 15,
                             "conf": pva_conf})
    assert pva["found"][name], pva
    ca_s, pva_s = gone[ioc.ca_port], gone[ioc.pva_port]
    record_property("ca_dropped_s", ca_s)
    record_property("pva_dropped_s", pva_s)
    print(f"\ndead client's connections closed {ca_s:.1f} s (CA) and {pva_s:.1f} s (PVA) "
          f"after its link went down (dead-peer timeout {DEAD_PEER_TIMEOUT:g} s)")
    assert ca_s < DEAD_PEER_TIMEOUT + 6 and pva_s < DEAD_PEER_TIMEOUT + 6
    assert ioc.log().count(f"Disconnected from client at {doomed.ip}") == 5
    assert ioc.stop() == 0


def held(node: Host, port: int, peer: str) -> int:
    """Established TCP connections to ``port`` from ``peer`` inside the node."""
    out = node.exec_cmd("ss", "-Htn", "state", "established", f"( sport = :{port} )").stdout
    return sum(1 for line in out.splitlines()
               if f" {peer}:" in line or f"[::ffff:{peer}]:" in line)
