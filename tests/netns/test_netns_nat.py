"""The failure podioc avoids with host networking: IOCs in pod namespaces behind NAT.

Topology: node n1 on the beamline subnet with a private pod network (cni0,
172.31.0.0/24) and two pod namespaces, each running a demo IOC at the default
ports of its own namespace (5064/5075/5076). iptables DNAT rules on the
node's address forward ports like a Kubernetes Service/hostPort would:
5064 (UDP+TCP), 5075 (TCP), 5076 (UDP) to pod A; 6064, 6075, 6076 to pod B's
5064/5075/5076. Broadcasts are not forwarded (as kube-proxy does not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns_fixtures import TopologyFactory
from netns_support import NsIoc, checks, clean_env, doctor, run_client, unique_prefix
from topology import Host

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

K8S = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@dataclass
class Nat:
    node: Host
    pod_a: Host
    pod_b: Host
    client: Host
    ioc_a: NsIoc
    ioc_b: NsIoc


@pytest.fixture(scope="module")
def nat_setup(nat: None, module_topology: TopologyFactory, log_dir: Path) -> Iterator[Nat]:
    topo = module_topology()
    node, client = topo.add_node(), topo.add_client()
    pod_a, pod_b = topo.add_pod(node), topo.add_pod(node)
    for pod, offset in ((pod_a, 0), (pod_b, 1000)):
        for proto, port in (("udp", 5064), ("tcp", 5064), ("tcp", 5075), ("udp", 5076)):
            topo.forward(pod, proto, port + offset, port)
    ioc_a = NsIoc(pod_a, unique_prefix("PA"), log_dir).start()
    ioc_b = NsIoc(pod_b, unique_prefix("PB"), log_dir).start()
    assert (ioc_a.ca_port, ioc_b.ca_port) == (5064, 5064)  # each in its own namespace
    yield Nat(node, pod_a, pod_b, client, ioc_a, ioc_b)
    for ioc in (ioc_a, ioc_b):
        ioc.stop()


def test_broadcast_search_does_not_reach_iocs_behind_nat(nat_setup: Nat) -> None:
    names = [nat_setup.ioc_a.prefix + "HEARTBEAT", nat_setup.ioc_b.prefix + "HEARTBEAT"]
    ca = run_client(nat_setup.client, {"op": "find_ca", "names": names, "timeout": 4})
    assert set(ca["found"].values()) == {None}, ca
    pva = run_client(nat_setup.client, {"op": "find_pva", "names": names, "timeout": 4})
    assert not any(pva["found"].values()), pva


def test_advertised_ca_port_leads_to_the_wrong_server(nat_setup: Nat) -> None:
    """Searching pod B through its forwarded port 6064: B answers with the port it
    listens on in its namespace (5064), so the client connects to node:5064, which
    is pod A: B's PVs never connect, and A sees a client it was not meant to get."""
    node = str(nat_setup.node.ip)
    name_b = nat_setup.ioc_b.prefix + "HEARTBEAT"
    answer = run_client(nat_setup.client, {"op": "search", "address": node, "port": 6064,
                                           "name": name_b})
    assert [a["tcp_port"] for a in answer["answers"]] == [5064], answer

    before = nat_setup.ioc_a.log().count("Connected to new client")
    env = clean_env(EPICS_CA_ADDR_LIST=f"{node}:6064", EPICS_CA_AUTO_ADDR_LIST="NO")
    result = run_client(nat_setup.client, {"op": "find_ca", "names": [name_b], "timeout": 4},
                        env)
    assert result["found"][name_b] is None, result
    assert nat_setup.ioc_a.log().count("Connected to new client") > before, (
        "the client did not end up at pod A")


def test_advertised_pva_port_leads_to_the_wrong_server(nat_setup: Nat) -> None:
    node = str(nat_setup.node.ip)
    name_b = nat_setup.ioc_b.prefix + "HEARTBEAT"
    conf = {"EPICS_PVA_ADDR_LIST": f"{node}:6076", "EPICS_PVA_AUTO_ADDR_LIST": "NO"}
    result = run_client(nat_setup.client, {"op": "find_pva", "names": [name_b], "timeout": 4,
                                           "conf": conf})
    assert result["found"] == {name_b: False}, result


def test_the_ioc_on_the_default_ports_is_reachable_by_unicast(nat_setup: Nat) -> None:
    """Only the pod whose ports happen to be forwarded 1:1 works, and only for a client
    configured with the node's address: the NAT case is fragile, not impossible."""
    node = str(nat_setup.node.ip)
    name_a = nat_setup.ioc_a.prefix + "HEARTBEAT"
    env = clean_env(EPICS_CA_ADDR_LIST=node, EPICS_CA_AUTO_ADDR_LIST="NO")
    result = run_client(nat_setup.client, {"op": "find_ca", "names": [name_a], "timeout": 6},
                        env)
    assert result["found"][name_a] == f"{node}:5064", result


def test_doctor_in_a_pod_without_host_networking_fails(nat_setup: Nat) -> None:
    code, report = doctor(nat_setup.pod_a, clean_env(**K8S))
    assert code == 1 and report["verdict"] == "FAIL"
    assert report["environment"]["host_network"] == "no"
    assert any("WITHOUT host networking" in m for m in checks(report, "FAIL"))
    # with the downward API variables the verdict is certain
    code, report = doctor(nat_setup.pod_a, clean_env(
        **K8S, PODIOC_POD_IP=str(nat_setup.pod_a.ip), PODIOC_NODE_IP=str(nat_setup.node.ip)))
    assert report["environment"]["host_network"] == "no"
    assert any("differs from node IP" in m for m in checks(report, "FAIL"))


def test_doctor_on_the_node_with_host_networking_is_ok(nat_setup: Nat) -> None:
    """The same node seen from a hostNetwork pod: its cni0/veth interfaces are visible."""
    code, report = doctor(nat_setup.node, clean_env(**K8S))
    assert report["environment"]["host_network"] == "yes", report["checks"]
    assert code == 0 and report["verdict"] == "OK", report["checks"]
    assert {b["address"] for b in report["ca"]["beacons"]} == {"10.77.0.255", "172.31.0.255"}
