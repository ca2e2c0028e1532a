"""CA discovery plans without sockets: search bindings, beacon targets, the local
address book and the message decoder, on made-up interfaces."""

from __future__ import annotations

from podioc.protocols.ca import discovery as cd
from podioc.protocols.ca import wire

ETH0 = cd.Interface("eth0", "10.1.2.3", "255.255.255.0", "10.1.2.255", True, False)
LO = cd.Interface("lo", "127.0.0.1", "255.0.0.0", "127.255.255.255", True, True)
POD32 = cd.Interface("eth1", "10.9.0.7", "255.255.255.255", None, True, False)
DOWN = cd.Interface("eth2", "10.5.0.1", "255.255.0.0", "10.5.255.255", False, False)
CNI = cd.Interface("cni0", "172.31.0.1", "255.255.255.0", "172.31.0.255", True, False)



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
    msg = wire.Message(wire.CMD_SEARCH, 5, 13, 7, 7, b"AB\0\0\0\0\0\0")
    data = msg.encode() + b"\x00\x06\xff"
    assert wire.decode(data) == [msg]
    assert wire.decode(b"") == []
