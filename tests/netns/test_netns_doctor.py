"""``podioc doctor`` on a node of the simulated subnet, with good and bad settings.

The NAT module checks its verdicts in a pod namespace and on a node with a pod
network; the discovery module checks it on a node with three IOCs running.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import pytest
from netns_fixtures import TopologyFactory
from netns_support import PY, checks, clean_env, doctor
from topology import Host

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def node(module_topology: TopologyFactory) -> Host:
    topo = module_topology()
    host = topo.add_node()
    topo.add_client()
    return host


def _broadcast(host: Host) -> str:
    return str(ipaddress.ip_network(f"{host.ip}/24", strict=False).broadcast_address)


def _no_fail_and_only_container_warnings(code: int, report: dict[str, Any]) -> None:
    assert code == 0 and report["verdict"] in ("OK", "WARN"), report["checks"]
    for check in report["checks"]:
        if check["status"] == "WARN":
            # this test machine may itself be a container (/.dockerenv): its namespaces
            # then look like a bridged container to doctor, which only warns
            assert check["topic"] == "Where this runs" and report["environment"]["container"]


def test_defaults_on_a_node(node: Host) -> None:
    code, report = doctor(node)
    _no_fail_and_only_container_warnings(code, report)
    assert report["ca"]["search"] == [{"address": "0.0.0.0", "port": 5064,
                                       "broadcast_only": False, "interface": "0.0.0.0"}]
    assert report["ca"]["tcp_port_free"] and report["pva"]["tcp_port_free"]
    assert [(b["address"], b["port"]) for b in report["ca"]["beacons"]] == [
        (_broadcast(node), 5065)]
    eth0 = next(i for i in report["interfaces"] if i["name"] == "eth0")
    assert (eth0["address"], eth0["broadcast"]) == (str(node.ip), _broadcast(node))
    assert report["settings"]["ca_server_port"] == 5064


def test_text_report(node: Host) -> None:
    done = node.call([PY, "-m", "podioc", "doctor"], env=clean_env())
    assert "Channel Access server" in done.stdout and "verdict:" in done.stdout
    assert f"beacons to {_broadcast(node)}:5065" in done.stdout


def test_interface_list_restricted_to_loopback(node: Host) -> None:
    _code, report = doctor(node, clean_env(EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
                                          EPICS_PVAS_INTF_ADDR_LIST="127.0.0.1"))
    warns = checks(report, "WARN")
    assert any("EPICS_CAS_INTF_ADDR_LIST=127.0.0.1: only clients on this host" in m
               for m in warns), warns
    assert any("EPICS_PVAS_INTF_ADDR_LIST=127.0.0.1" in m for m in warns), warns


def test_interface_list_with_the_node_address(node: Host) -> None:
    """A server pinned to one address also listens on that subnet's broadcast address."""
    code, report = doctor(node, clean_env(EPICS_CAS_INTF_ADDR_LIST=str(node.ip)))
    _no_fail_and_only_container_warnings(code, report)
    assert [(s["address"], s["broadcast_only"]) for s in report["ca"]["search"]] == [
        (str(node.ip), False), (_broadcast(node), True)]


def test_interface_list_naming_a_foreign_address(node: Host) -> None:
    code, report = doctor(node, clean_env(EPICS_CAS_INTF_ADDR_LIST="10.99.99.99"))
    assert code == 1
    assert any("10.99.99.99, which is not an address of this host" in m
               for m in checks(report, "FAIL"))


def test_client_address_list_empty_with_auto_off(node: Host) -> None:
    code, report = doctor(node, clean_env(EPICS_CA_AUTO_ADDR_LIST="NO",
                                          EPICS_PVA_AUTO_ADDR_LIST="NO"))
    assert code == 1 and report["verdict"] == "FAIL"
    fails = checks(report, "FAIL")
    assert any("EPICS_CA_AUTO_ADDR_LIST=NO with an empty EPICS_CA_ADDR_LIST" in m
               for m in fails), fails
    assert any("EPICS_PVA_AUTO_ADDR_LIST=NO" in m for m in fails), fails


def test_beacon_list_reaching_no_subnet(node: Host) -> None:
    code, report = doctor(node, clean_env(EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
                                          EPICS_CAS_BEACON_ADDR_LIST="192.168.99.255"))
    assert code == 1
    fails = checks(report, "FAIL")
    assert any("192.168.99.255:5065" in m and "cannot be sent" in m for m in fails), fails
    assert any("no beacon address reaches any subnet" in m for m in fails), fails


def test_beacons_off(node: Host) -> None:
    _code, report = doctor(node, clean_env(EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO"))
    assert any("no beacons" in m for m in checks(report, "WARN"))


def test_bad_setting_is_reported_not_raised(node: Host) -> None:
    code, report = doctor(node, clean_env(EPICS_CA_SERVER_PORT="seventy"))
    assert code == 1
    assert any("EPICS_CA_SERVER_PORT" in m for m in checks(report, "FAIL"))


def test_not_root_is_fine(node: Host) -> None:
    """doctor needs no privileges (it runs as the IOC's user in a pod)."""
    if not hasattr(os, "setuid"):
        pytest.skip("no setuid")
    done = node.call(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      PY, "-m", "podioc", "doctor", "--json"], env=clean_env())
    assert done.returncode in (0, 1), done.stderr
    assert '"verdict"' in done.stdout
