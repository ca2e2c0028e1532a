"""CA and PVA clients at default settings find podioc IOCs on a simulated beamline subnet.

Topology (one for the module): node n1 runs three demo IOCs that all ask for
the default ports (5064/5075: one gets them, the others fall back to free
ports), node n2 runs one more, node n3 one bound to its subnet address only
(EPICS_CAS_INTF_ADDR_LIST); client c1 has no EPICS_* variable at all.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns_fixtures import TopologyFactory
from netns_support import PY, NsIoc, checks, clean_env, doctor, run_client, unique_prefix
from topology import Host

RecordProperty = Callable[[str, object], None]

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]


@dataclass
class Beamline:
    n1: Host
    n2: Host
    n3: Host
    c1: Host
    node_iocs: list[NsIoc]  # the three on n1
    other: NsIoc  # on n2
    pinned: NsIoc  # on n3, EPICS_CAS_INTF_ADDR_LIST / EPICS_PVAS_INTF_ADDR_LIST = its address


@pytest.fixture(scope="module")
def beamline(module_topology: TopologyFactory, log_dir: Path) -> Iterator[Beamline]:
    topo = module_topology()
    n1, n2, n3 = topo.add_node(), topo.add_node(), topo.add_node()
    c1 = topo.add_client()
    iocs = [NsIoc(n1, unique_prefix(f"N1{x}"), log_dir).start() for x in "ABC"]
    other = NsIoc(n2, unique_prefix("N2A"), log_dir).start()
    pinned = NsIoc(n3, unique_prefix("N3A"), log_dir, env={
        "EPICS_CAS_INTF_ADDR_LIST": str(n3.ip), "EPICS_PVAS_INTF_ADDR_LIST": str(n3.ip)}).start()
    yield Beamline(n1, n2, n3, c1, iocs, other, pinned)
    for ioc in [*iocs, other, pinned]:
        assert ioc.stop() == 0, ioc.log()[-3000:]


def test_three_iocs_on_one_node_share_default_ports(beamline: Beamline) -> None:
    ca_ports = sorted(ioc.ca_port for ioc in beamline.node_iocs)
    pva_ports = sorted(ioc.pva_port for ioc in beamline.node_iocs)
    assert 5064 in ca_ports and len(set(ca_ports)) == 3, ca_ports
    assert 5075 in pva_ports and len(set(pva_ports)) == 3, pva_ports


def _all_names(iocs: list[NsIoc]) -> list[str]:
    return [n for ioc in iocs for n in ioc.names()]


def _assert_ca_found(result: dict[str, Any], iocs: list[NsIoc], node_ip: str) -> None:
    found = result["found"]
    missing = [n for n, host in found.items() if host is None]
    assert not missing, f"not found over CA: {missing}"
    for ioc in iocs:
        hosts = {found[n] for n in ioc.names()}
        assert hosts == {f"{node_ip}:{ioc.ca_port}"}, (ioc.prefix, hosts)


def test_ca_broadcast_finds_every_pv_of_every_ioc(beamline: Beamline,
                                                 record_property: RecordProperty) -> None:
    """pyepics, default settings: broadcast search finds all IOCs on both nodes."""
    iocs = [*beamline.node_iocs, beamline.other, beamline.pinned]
    result = run_client(beamline.c1, {"op": "find_ca", "names": _all_names(iocs),
                                      "timeout": 15})
    _assert_ca_found(result, beamline.node_iocs, str(beamline.n1.ip))
    _assert_ca_found(result, [beamline.other], str(beamline.n2.ip))
    _assert_ca_found(result, [beamline.pinned], str(beamline.n3.ip))
    three = run_client(beamline.c1, {"op": "find_ca", "names": _all_names(beamline.node_iocs),
                                     "timeout": 15})
    _assert_ca_found(three, beamline.node_iocs, str(beamline.n1.ip))
    record_property("ca_broadcast_3iocs_s", three["elapsed"])
    print(f"\nCA broadcast: {len(three['found'])} PVs of 3 IOCs in {three['elapsed']:.3f} s")


def test_ca_unicast_finds_every_ioc_on_the_node(beamline: Beamline,
                                               record_property: RecordProperty) -> None:
    """Address list = the node's address only: the kernel hands each search to one of
    the three servers sharing UDP 5064; podioc's fan-out makes all of them answer."""
    env = clean_env(EPICS_CA_ADDR_LIST=str(beamline.n1.ip), EPICS_CA_AUTO_ADDR_LIST="NO")
    result = run_client(beamline.c1, {"op": "find_ca", "timeout": 15,
                                      "names": _all_names(beamline.node_iocs)}, env)
    _assert_ca_found(result, beamline.node_iocs, str(beamline.n1.ip))
    record_property("ca_unicast_3iocs_s", result["elapsed"])
    print(f"\nCA unicast: {len(result['found'])} PVs of 3 IOCs in {result['elapsed']:.3f} s")


def test_ca_unicast_to_a_pinned_interface(beamline: Beamline) -> None:
    env = clean_env(EPICS_CA_ADDR_LIST=str(beamline.n3.ip), EPICS_CA_AUTO_ADDR_LIST="NO")
    result = run_client(beamline.c1, {"op": "find_ca", "timeout": 10,
                                      "names": beamline.pinned.names()}, env)
    _assert_ca_found(result, [beamline.pinned], str(beamline.n3.ip))


def test_ca_search_answer_names_the_server(beamline: Beamline) -> None:
    """A raw unicast search for each IOC's PV: exactly one answer each, from UDP 5064,
    advertising that IOC's own TCP port (relayed answers name the node's address)."""
    for ioc in beamline.node_iocs:
        result = run_client(beamline.c1, {"op": "search", "address": str(beamline.n1.ip),
                                          "port": 5064, "name": ioc.prefix + "HEARTBEAT"})
        answers = result["answers"]
        assert len(answers) == 1, answers
        assert answers[0]["tcp_port"] == ioc.ca_port
        assert answers[0]["src"] == f"{beamline.n1.ip}:5064"
        assert answers[0]["address"] in ("255.255.255.255", str(beamline.n1.ip))


def test_ca_name_server_finds_that_iocs_pvs(beamline: Beamline) -> None:
    """EPICS_CA_NAME_SERVERS=<ioc>:<tcp port>: searches over TCP (caproto alone drops
    such a client with a priority-mismatch protocol error)."""
    ioc = next(i for i in beamline.node_iocs if i.ca_port != 5064)
    env = clean_env(EPICS_CA_NAME_SERVERS=f"{beamline.n1.ip}:{ioc.ca_port}",
                    EPICS_CA_AUTO_ADDR_LIST="NO")
    result = run_client(beamline.c1, {"op": "find_ca", "timeout": 15, "names": ioc.names()},
                        env)
    _assert_ca_found(result, [ioc], str(beamline.n1.ip))
    assert "priority" not in ioc.log()


def _assert_pva_found(result: dict[str, Any]) -> None:
    missing = [n for n, ok in result["found"].items() if not ok]
    assert not missing, f"not found over PVA: {missing} {result.get('errors')}"


def test_pva_broadcast_finds_every_pv_of_every_ioc(beamline: Beamline,
                                                  record_property: RecordProperty) -> None:
    iocs = [*beamline.node_iocs, beamline.other, beamline.pinned]
    result = run_client(beamline.c1, {"op": "find_pva", "names": _all_names(iocs),
                                      "timeout": 15})
    _assert_pva_found(result)
    three = run_client(beamline.c1, {"op": "find_pva", "timeout": 15,
                                     "names": _all_names(beamline.node_iocs)})
    _assert_pva_found(three)
    record_property("pva_broadcast_3iocs_s", three["elapsed"])
    print(f"\nPVA broadcast: {len(three['found'])} PVs of 3 IOCs in {three['elapsed']:.3f} s")


def test_pva_unicast_finds_every_ioc_on_the_node(beamline: Beamline) -> None:
    """pvxs fans unicast searches out over local multicast; check it with podioc's IOCs."""
    conf = {"EPICS_PVA_ADDR_LIST": str(beamline.n1.ip), "EPICS_PVA_AUTO_ADDR_LIST": "NO"}
    result = run_client(beamline.c1, {"op": "find_pva", "timeout": 15, "conf": conf,
                                      "names": _all_names(beamline.node_iocs)})
    _assert_pva_found(result)


@pytest.mark.parametrize("op", ["rw_ca", "rw_pva"])
def test_read_write_monitor_by_broadcast(beamline: Beamline, op: str) -> None:
    ioc = beamline.node_iocs[1]
    value = 42.5 if op == "rw_ca" else 43.5
    result = run_client(beamline.c1, {"op": op, "rw": ioc.prefix + "SETPOINT", "value": value,
                                      "ro": ioc.prefix + "TEMPERATURE", "monitor_s": 1.5})
    assert "error" not in result, result
    assert result["after"] == value
    assert result["updates"] >= 3, result  # TEMPERATURE changes every 0.1 s


def test_doctor_on_a_node_with_three_iocs(beamline: Beamline) -> None:
    """The default ports are taken (fine: the next IOC takes a free port and is found by
    search); the UDP search port is shared by three servers (fine: podioc fans out)."""
    code, report = doctor(beamline.n1)
    assert code == 0, report["checks"]
    assert not report["ca"]["tcp_port_free"] and not report["pva"]["tcp_port_free"]
    assert len(report["ca"]["udp_sharers"]) >= 3, report["ca"]
    infos = checks(report, "INFO")
    assert any("CA TCP port 5064 is in use" in m and "podioc" in m for m in infos), infos
    assert any("already use UDP 5064" in m for m in infos), infos


def test_without_fanout_a_unicast_search_finds_one_ioc(make_topology: TopologyFactory,
                                                       log_dir: Path) -> None:
    """The problem the fan-out solves (PODIOC_CA_SEARCH_FANOUT=NO, as plain caproto): the
    kernel gives a client's unicast searches to one of the servers sharing UDP 5064."""
    topo = make_topology()
    node, client = topo.add_node(), topo.add_client()
    iocs = [NsIoc(node, unique_prefix(f"NF{x}"), log_dir,
                  env={"PODIOC_CA_SEARCH_FANOUT": "NO"}).start() for x in "AB"]
    names = [ioc.prefix + "HEARTBEAT" for ioc in iocs]
    env = clean_env(EPICS_CA_ADDR_LIST=str(node.ip), EPICS_CA_AUTO_ADDR_LIST="NO")
    result = run_client(client, {"op": "find_ca", "names": names, "timeout": 4}, env)
    assert sum(host is not None for host in result["found"].values()) == 1, result
    broadcast = run_client(client, {"op": "find_ca", "names": names, "timeout": 10})
    assert None not in broadcast["found"].values(), broadcast
    _code, report = doctor(node, clean_env(PODIOC_CA_SEARCH_FANOUT="NO"))
    assert any("PODIOC_CA_SEARCH_FANOUT=NO" in c["hint"] for c in report["checks"])
    for ioc in iocs:
        assert ioc.stop() == 0


def test_unicast_fanout_also_reaches_a_non_podioc_server(beamline: Beamline) -> None:
    """A plain caproto IOC shares UDP 5064 on the node. Whichever server the kernel
    hands a unicast search to (it hashes the client's source port), a search for the
    plain IOC's PV is answered exactly once: by the IOC itself, or through the relay
    of the podioc IOC that received it."""
    name = unique_prefix("PLAIN")
    plain = beamline.n1.run([PY, "-m", "caproto.ioc_examples.simple", "--prefix", name,
                             "--quiet"], env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        spec = {"op": "search", "address": str(beamline.n1.ip), "port": 5064,
                "name": name + "A", "timeout": 0.5}
        deadline = time.monotonic() + 20
        while not run_client(beamline.c1, spec)["answers"]:  # wait until it serves
            assert plain.poll() is None and time.monotonic() < deadline
        rounds = run_client(beamline.c1, {**spec, "repeat": 12})["rounds"]
        assert all(len(answers) == 1 for answers in rounds), rounds
        assert len({a["tcp_port"] for answers in rounds for a in answers}) == 1
        # relayed answers name the node (the plain IOC's own say "use the source");
        # with 4 servers on the port, 12 searches all reaching the plain one is ~1e-7
        assert str(beamline.n1.ip) in {a["address"] for answers in rounds for a in answers}
    finally:
        plain.terminate()
        plain.wait(10)
