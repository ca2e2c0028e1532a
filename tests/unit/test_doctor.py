"""``podioc doctor``'s checks on made-up interfaces, ports and routes (nothing probed)."""

from __future__ import annotations

import json

import pytest

from podioc.diagnostics import doctor as dr
from podioc.protocols.ca import discovery as cd

ETH0 = cd.Interface("eth0", "10.1.2.3", "255.255.255.0", "10.1.2.255", True, False)
LO = cd.Interface("lo", "127.0.0.1", "255.0.0.0", "127.255.255.255", True, True)
POD32 = cd.Interface("eth1", "10.9.0.7", "255.255.255.255", None, True, False)
CNI = cd.Interface("cni0", "172.31.0.1", "255.255.255.0", "172.31.0.255", True, False)


def _probes(ifaces: list[cd.Interface], container: bool = False) -> dr.Probes:
    return dr.Probes(interfaces=lambda: ifaces, tcp_port=lambda a, p: dr.PortUse(True),
                     udp_sharers=lambda p: (), route=lambda a: None,
                     hostname=lambda: "testhost", files=lambda p: container)


@pytest.mark.parametrize(("env", "ifaces", "container", "expect"), [
    ({}, [LO, ETH0], False, ("OK", "unknown")),
    ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, [LO, ETH0], False, ("FAIL", "no")),
    ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, [LO, ETH0, CNI], False, ("OK", "yes")),
    ({}, [LO, ETH0], True, ("WARN", "no")),
    ({"KUBERNETES_SERVICE_HOST": "x", "PODIOC_NODE_IP": "10.1.2.3", "PODIOC_POD_IP": "10.1.2.3"},
     [LO, ETH0], False, ("OK", "yes")),
    ({"KUBERNETES_SERVICE_HOST": "x", "PODIOC_NODE_IP": "10.1.2.3", "PODIOC_POD_IP": "10.9.0.7"},
     [LO, POD32], False, ("FAIL", "no")),
])
def test_doctor_where_this_runs(env: dict[str, str], ifaces: list[cd.Interface],
                                container: bool, expect: tuple[str, str]) -> None:
    report = dr.diagnose(env, _probes(ifaces, container))
    topic = [c.status for c in report.checks if c.topic == "Where this runs"]
    assert topic == [expect[0]]
    if env or container:
        assert report.environment["host_network"] == expect[1]


def test_doctor_without_broadcast_or_outside_interface() -> None:
    only_lo = dr.diagnose({}, _probes([LO]))
    assert any("only loopback" in c.message for c in only_lo.checks if c.status == "FAIL")
    pod = dr.diagnose({}, _probes([LO, POD32]))
    assert any("no interface has a broadcast address" in c.message
               for c in pod.checks if c.status == "FAIL")


def test_doctor_report_formats() -> None:
    report = dr.diagnose({"EPICS_CAS_BEACON_ADDR_LIST": "10.1.2.255"}, _probes([LO, ETH0]))
    assert report.verdict == "OK"
    text = report.format_text()
    assert text.startswith("podioc doctor on testhost") and text.endswith(
        "verdict: OK (0 FAIL, 0 WARN)")
    doc = json.loads(dr.to_json_text(report))
    assert doc["format"] == 1 and doc["verdict"] == "OK"
    assert doc["ca"]["beacons"] == [{"address": "10.1.2.255", "port": 5065,
                                     "announce": "10.1.2.3",
                                     "origin": "EPICS_CAS_BEACON_ADDR_LIST"}]


def test_doctor_takes_the_config_epics_block() -> None:
    report = dr.diagnose({}, _probes([LO, ETH0]), config_env={"EPICS_CA_SERVER_PORT": "6064"})
    assert report.settings["ca_server_port"] == 6064
    report = dr.diagnose({"EPICS_CA_SERVER_PORT": "7064"}, _probes([LO, ETH0]),
                         config_env={"EPICS_CA_SERVER_PORT": "6064"})
    assert report.settings["ca_server_port"] == 7064
