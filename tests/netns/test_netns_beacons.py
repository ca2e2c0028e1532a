"""CA beacons on the subnet, and clients reconnecting to a restarted IOC by themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from netns_fixtures import TopologyFactory
from netns_support import NsIoc, Watcher, clean_env, run_client, unique_prefix

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]


def test_beacons_go_to_the_subnet_broadcast(make_topology: TopologyFactory,
                                            log_dir: Path) -> None:
    """A client on the subnet hears the IOC's beacons (caproto alone would send them to
    255.255.255.255, which fails without a default route); an explicit
    EPICS_CAS_BEACON_ADDR_LIST with auto off sends them there only."""
    topo = make_topology()
    node, client = topo.add_node(), topo.add_client()
    auto = NsIoc(node, unique_prefix("BA"), log_dir,
                 env={"EPICS_CAS_BEACON_PERIOD": "0.5"}).start()
    listed = NsIoc(node, unique_prefix("BL"), log_dir, env={
        "EPICS_CAS_BEACON_PERIOD": "0.5", "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": f"{client.ip}:5099"}).start()
    default_port = run_client(client, {"op": "beacons", "port": 5065, "duration": 2.5})
    other_port = run_client(client, {"op": "beacons", "port": 5099, "duration": 2.5})

    by_port: dict[int, list[dict[str, Any]]] = {}
    for b in default_port["beacons"]:
        by_port.setdefault(b["server_port"], []).append(b)
    assert auto.ca_port in by_port, default_port
    assert listed.ca_port not in by_port, "auto beacons were not turned off"
    beacons = by_port[auto.ca_port]
    assert len(beacons) >= 3
    assert {b["src"] for b in beacons} == {str(node.ip)}
    assert {b["address"] for b in beacons} == {str(node.ip)}
    ids = [b["id"] for b in beacons]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    assert {b["server_port"] for b in other_port["beacons"]} == {listed.ca_port}
    for ioc in (auto, listed):
        assert "unreachable" not in ioc.log().lower()
        assert ioc.stop() == 0


def test_client_reconnects_after_ioc_restart(make_topology: TopologyFactory, log_dir: Path,
                                             record_property: Callable[[str, object], None]
                                             ) -> None:
    """A pyepics monitor (default settings) survives an IOC restart on the same node and
    ports: it sees the disconnect, then values again, with nothing done on the client
    (libca's search backoff finds the new server within seconds)."""
    topo = make_topology()
    node, client = topo.add_node(), topo.add_client()
    prefix = unique_prefix("RS")
    ioc = NsIoc(node, prefix, log_dir).start()
    watcher = Watcher(client, prefix + "TEMPERATURE", clean_env())
    try:
        watcher.wait_for("connected", 15)
        watcher.wait_for("value", 10)
        assert ioc.stop() == 0
        watcher.wait_for("disconnected", 15)
        again = NsIoc(node, prefix, log_dir).start()
        ready = time.monotonic()
        assert (again.ca_port, again.pva_port) == (ioc.ca_port, ioc.pva_port)
        watcher.wait_for("connected", 60)
        delay = time.monotonic() - ready
        watcher.wait_for("value", 10)
        record_property("reconnect_s", delay)
        print(f"\nreconnected {delay:.2f} s after the restarted IOC was ready")
        assert again.stop() == 0
    finally:
        watcher.close()
