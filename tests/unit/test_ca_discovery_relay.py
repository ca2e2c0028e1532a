"""The CA search relay over loopback UDP (no root, no namespace, no IOC)."""

from __future__ import annotations

import ipaddress
import socket
import struct

from harness import free_ports
from podioc.protocols.ca import discovery as cd
from podioc.protocols.ca import wire
from podioc.protocols.ca.discovery import relay as relay_module


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
        search = (wire.Message(wire.CMD_VERSION, 1, 13, 4242, 0).encode()
                  + wire.Message(wire.CMD_SEARCH, 5, 13, 31, 31, b"X:PV\0\0\0\0").encode())
        relay.forward(search, ("10.1.2.99", 40000), "10.1.2.3", via)  # type: ignore[arg-type]
        data, src = peer.recvfrom(1000)
        assert src == relay.address
        version, forwarded = wire.decode(data)
        assert version.command == wire.CMD_VERSION
        assert (forwarded.command, forwarded.data_type, forwarded.payload) == (
            wire.CMD_SEARCH, wire.DONT_REPLY, b"X:PV\0\0\0\0")
        rid = forwarded.p1
        assert rid != 31 and forwarded.p2 == rid

        # a peer answers over loopback, "use the datagram's address", its TCP port 41234
        answer = wire.Message(wire.CMD_SEARCH, 41234, 0, relay_module.ANY_ADDRESS, rid,
                            struct.pack(">H6x", 13))
        unknown = wire.Message(wire.CMD_SEARCH, 5064, 0, relay_module.ANY_ADDRESS, rid + 1000,
                               b"")
        relay.relay(wire.Message(wire.CMD_VERSION, 0, 13, 0, 0).encode() + answer.encode()
                    + unknown.encode(), ("127.0.0.1", port))
        [(sent, client)] = via.sent
        assert client == ("10.1.2.99", 40000)
        header, relayed = wire.decode(sent)
        assert (header.data_type, header.p1) == (1, 4242)  # the client's sequence, echoed
        assert relayed.data_type == 41234 and relayed.p2 == 31
        assert str(ipaddress.IPv4Address(relayed.p1)) == "10.1.2.3"
        assert relay.forwarded == 1 and relay.relayed == 1
    finally:
        relay.close()
        peer.close()


def test_relay_forgets_old_searches() -> None:
    relay = cd.Relay(9)
    try:
        via = _Via()
        for _ in range(relay_module.RELAY_MAX + 50):
            search = wire.Message(wire.CMD_SEARCH, 5, 13, 1, 1, b"A\0\0\0\0\0\0\0")
            relay.forward(search.encode(),
                          ("10.1.2.99", 1), "10.1.2.3", via)  # type: ignore[arg-type]
        assert len(relay.pending) <= relay_module.RELAY_MAX + 1
    finally:
        relay.close()
