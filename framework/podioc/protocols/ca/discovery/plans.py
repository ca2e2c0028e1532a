"""Which sockets the CA server listens on and where its beacons go (shared with
``podioc doctor``, which shows the same plan)."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from .interfaces import LOOPBACK_BROADCAST, Interface

log = logging.getLogger(__name__)


def host_port(entry: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` of an address list, the host resolved to an IPv4 address."""
    host, _, port = entry.partition(":")
    return socket.gethostbyname(host), int(port) if port else default_port


@dataclass(frozen=True)
class SearchBinding:
    """A UDP socket the CA server listens for searches on."""

    address: str
    port: int
    broadcast_only: bool  # bound to a broadcast address: receives, never answers
    interface: str  # the EPICS_CAS_INTF_ADDR_LIST entry it serves


@dataclass(frozen=True)
class BeaconTarget:
    """Where beacons go and which server address they announce."""

    address: str
    port: int
    announce: str  # server address in the beacon; 0.0.0.0 = the datagram's source
    origin: str  # "interface <name>", "EPICS_CAS_BEACON_ADDR_LIST" or "loopback"


def search_bindings(intf_addrs: Sequence[str], port: int,
                    ifaces: Sequence[Interface]) -> list[SearchBinding]:
    """UDP sockets for the server's interfaces: each address, plus the broadcast
    address of a specific interface (rsrv does the same)."""
    out: list[SearchBinding] = []
    for addr in intf_addrs or ["0.0.0.0"]:
        out.append(SearchBinding(addr, port, False, addr))
        if addr == "0.0.0.0":
            continue
        bcast = next((i.broadcast for i in ifaces if i.ip == addr and i.broadcast), None)
        if bcast and bcast != addr and all(b.address != bcast for b in out):
            out.append(SearchBinding(bcast, port, True, addr))
    return out


def beacon_targets(intf_addrs: Sequence[str], beacon_addrs: Sequence[str], auto: bool,
                   port: int, ifaces: Sequence[Interface]) -> list[BeaconTarget]:
    """Beacon destinations: the explicit list, plus (auto) the broadcast address of
    every up interface the server listens on; loopback only as a last resort."""
    out: list[BeaconTarget] = []
    seen: set[tuple[str, int]] = set()

    def add(address: str, dport: int, announce: str, origin: str) -> None:
        if (address, dport) not in seen:
            seen.add((address, dport))
            out.append(BeaconTarget(address, dport, announce, origin))

    for entry in beacon_addrs:
        try:
            address, dport = host_port(entry, port)
        except (OSError, ValueError):
            log.warning("EPICS_CAS_BEACON_ADDR_LIST entry %r is not an address; skipped", entry)
            continue
        add(address, dport, _announce_for(address, intf_addrs, ifaces),
            "EPICS_CAS_BEACON_ADDR_LIST")
    if auto:
        wildcard = not intf_addrs or "0.0.0.0" in intf_addrs
        chosen = [i for i in ifaces if i.up and i.broadcast and not i.loopback
                  and (wildcard or i.ip in intf_addrs)]
        for iface in chosen:
            assert iface.broadcast
            add(iface.broadcast, port, iface.ip, f"interface {iface.name}")
        loop_only = not wildcard and all(ipaddress.IPv4Address(a).is_loopback
                                         for a in intf_addrs)
        if not chosen and (loop_only or wildcard):
            add(LOOPBACK_BROADCAST, port, "127.0.0.1", "loopback")
    return out


def _announce_for(address: str, intf_addrs: Sequence[str],
                  ifaces: Sequence[Interface]) -> str:
    dest = ipaddress.IPv4Address(address)
    for iface in ifaces:
        net = iface.network
        if net is not None and dest in net and (
                not intf_addrs or "0.0.0.0" in intf_addrs or iface.ip in intf_addrs):
            return iface.ip
    return "0.0.0.0"
