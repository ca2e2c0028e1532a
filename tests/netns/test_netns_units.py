"""CA discovery and doctor logic without namespaces (no root needed; loopback only)."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest
from netns_support import CLIENT, clean_env

from harness import IocProcess, free_ports
from podioc.protocols import ca_discovery as cd
from podioc.runtime import doctor as dr

ETH0 = cd.Interface("eth0", "10.1.2.3", "255.255.255.0", "10.1.2.255", True, False)
LO = cd.Interface("lo", "127.0.0.1", "255.0.0.0", "127.255.255.255", True, True)
POD32 = cd.Interface("eth1", "10.9.0.7", "255.255.255.255", None, True, False)
DOWN = cd.Interface("eth2", "10.5.0.1", "255.255.0.0", "10.5.255.255", False, False)
CNI = cd.Interface("cni0", "172.31.0.1", "255.255.255.0", "172.31.0.255", True, False)


# -- plans ---------------------------------------------------------------------------
def test_search_bindings() -> None:
    ifaces = [ETH0, LO]
    assert cd.search_bindings([], 5064, ifaces) == [
        cd.SearchBinding("0.0.0.0", 5064, False, "0.0.0.0")]
    assert cd.search_bindings(["10.1.2.3"], 5064, ifaces) == [
        cd.SearchBinding("10.1.2.3", 5064, False, "10.1.2.3"),
        cd.SearchBinding("10.1.2.255", 5064, True, "10.1.2.3")]
    assert [b.address for b in cd.search_bindings(["127.0.0.1"], 7000, ifaces)] == [
        "127.0.0.1", "127.255.255.255"]


def _targets(intf: list[str], listed: list[str], auto: bool,
             ifaces: list[cd.Interface]) -> list[tuple[str, int, str]]:
    return [(t.address, t.port, t.announce)
            for t in cd.beacon_targets(intf, listed, auto, 5065, ifaces)]


def test_beacon_targets_are_interface_broadcasts() -> None:
    ifaces = [LO, ETH0, POD32, DOWN, CNI]
    assert _targets([], [], True, ifaces) == [("10.1.2.255", 5065, "10.1.2.3"),
                                              ("172.31.0.255", 5065, "172.31.0.1")]
    assert _targets(["10.1.2.3"], [], True, ifaces) == [("10.1.2.255", 5065, "10.1.2.3")]


def test_beacon_targets_follow_the_lists() -> None:
    ifaces = [LO, ETH0]
    assert _targets([], ["10.1.2.40:6000", "192.168.7.255"], False, ifaces) == [
        ("10.1.2.40", 6000, "10.1.2.3"), ("192.168.7.255", 5065, "0.0.0.0")]
    assert _targets([], ["10.1.2.40"], True, ifaces) == [
        ("10.1.2.40", 5065, "10.1.2.3"), ("10.1.2.255", 5065, "10.1.2.3")]
    assert _targets([], [], False, ifaces) == []


def test_beacon_targets_fall_back_to_loopback() -> None:
    assert _targets(["127.0.0.1"], [], True, [LO, ETH0]) == [
        ("127.255.255.255", 5065, "127.0.0.1")]
    assert _targets([], [], True, [LO]) == [("127.255.255.255", 5065, "127.0.0.1")]
    assert _targets([], [], True, [LO, POD32]) == [("127.255.255.255", 5065, "127.0.0.1")]


def test_address_book() -> None:
    book = cd.AddressBook(lambda: [LO, ETH0])
    assert book.is_local_unicast("10.1.2.3")
    assert book.is_local_unicast("127.0.0.1") and book.is_local_unicast("127.0.0.53")
    for address in ("10.1.2.255", "127.255.255.255", "255.255.255.255", "224.0.0.128",
                    "10.1.2.4"):
        assert not book.is_local_unicast(address), address


def test_decode_stops_at_garbage() -> None:
    msg = cd.Message(cd.CMD_SEARCH, 5, 13, 7, 7, b"AB\0\0\0\0\0\0")
    data = msg.encode() + b"\x00\x06\xff"
    assert cd.decode(data) == [msg]
    assert cd.decode(b"") == []


# -- the relay, over loopback ------------------------------------------------------------
class _Via:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def send_now(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent.append((data, address))


def test_relay_rebroadcasts_and_answers_the_client() -> None:
    (port,) = free_ports(1)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peer.bind(("0.0.0.0", port))
    peer.settimeout(5)
    relay = cd.Relay(port)
    via = _Via()
    try:
        search = (cd.Message(cd.CMD_VERSION, 1, 13, 4242, 0).encode()
                  + cd.Message(cd.CMD_SEARCH, 5, 13, 31, 31, b"X:PV\0\0\0\0").encode())
        relay.forward(search, ("10.1.2.99", 40000), "10.1.2.3", via)  # type: ignore[arg-type]
        data, src = peer.recvfrom(1000)
        assert src == relay.address
        version, forwarded = cd.decode(data)
        assert version.command == cd.CMD_VERSION
        assert (forwarded.command, forwarded.data_type, forwarded.payload) == (
            cd.CMD_SEARCH, cd.DONT_REPLY, b"X:PV\0\0\0\0")
        rid = forwarded.p1
        assert rid != 31 and forwarded.p2 == rid

        # a peer answers over loopback, "use the datagram's address", its TCP port 41234
        answer = cd.Message(cd.CMD_SEARCH, 41234, 0, cd.ANY_ADDRESS, rid,
                            struct.pack(">H6x", 13))
        unknown = cd.Message(cd.CMD_SEARCH, 5064, 0, cd.ANY_ADDRESS, rid + 1000, b"")
        relay.relay(cd.Message(cd.CMD_VERSION, 0, 13, 0, 0).encode() + answer.encode()
                    + unknown.encode(), ("127.0.0.1", port))
        [(sent, client)] = via.sent
        assert client == ("10.1.2.99", 40000)
        header, relayed = cd.decode(sent)
        assert (header.data_type, header.p1) == (1, 4242)  # the client's sequence, echoed
        assert relayed.data_type == 41234 and relayed.p2 == 31
        assert cd._ip_str(relayed.p1) == "10.1.2.3"
        assert relay.forwarded == 1 and relay.relayed == 1
    finally:
        relay.close()
        peer.close()


def test_relay_forgets_old_searches() -> None:
    relay = cd.Relay(9)
    try:
        via = _Via()
        for _ in range(cd.RELAY_MAX + 50):
            relay.forward(cd.Message(cd.CMD_SEARCH, 5, 13, 1, 1, b"A\0\0\0\0\0\0\0").encode(),
                          ("10.1.2.99", 1), "10.1.2.3", via)  # type: ignore[arg-type]
        assert len(relay.pending) <= cd.RELAY_MAX + 1
    finally:
        relay.close()


# -- name servers (loopback IOC) -------------------------------------------------------
def test_name_server_client_finds_pvs(ioc_factory: Callable[..., IocProcess]) -> None:
    """libca with EPICS_CA_NAME_SERVERS searches over TCP; caproto alone drops it."""
    ioc = ioc_factory()
    env = clean_env(EPICS_CA_NAME_SERVERS=f"127.0.0.1:{ioc.ca_port}",
                    EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST="",
                    EPICS_CA_SERVER_PORT=str(ioc.ca_port),
                    EPICS_CA_REPEATER_PORT=str(ioc.repeater_port))
    names = [ioc.prefix + "HEARTBEAT", ioc.prefix + "SETPOINT"]
    done = subprocess.run([sys.executable, str(CLIENT), json.dumps(
        {"op": "find_ca", "names": names, "timeout": 10})], env=env, capture_output=True,
        text=True, timeout=60)
    result = json.loads(done.stdout.splitlines()[-1])
    assert all(result["found"].values()), (result, done.stderr)
    assert "priority" not in ioc.log_text()


# -- doctor ----------------------------------------------------------------------------
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


def test_doctor_command_with_a_config() -> None:
    from netns_support import DEMO_YAML

    done = subprocess.run([sys.executable, "-m", "podioc", "doctor", str(DEMO_YAML), "--json"],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    doc = json.loads(done.stdout)
    assert done.returncode == (1 if doc["verdict"] == "FAIL" else 0)
    assert doc["settings"]["ca_server_port"] == 5064
    assert {c["topic"] for c in doc["checks"]} >= {"Network interfaces",
                                                   "Channel Access server", "PVAccess server"}
