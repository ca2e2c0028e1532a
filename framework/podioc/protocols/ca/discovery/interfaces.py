"""This host's IPv4 interfaces and which local addresses are unicast."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

LOOPBACK_BROADCAST = "127.255.255.255"


@dataclass(frozen=True)
class Interface:
    """One IPv4 address of a network interface."""

    name: str
    ip: str
    netmask: str | None
    broadcast: str | None
    up: bool
    loopback: bool

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        """The subnet, if the netmask is known."""
        if not self.netmask:
            return None
        return ipaddress.IPv4Network(f"{self.ip}/{self.netmask}", strict=False)


def interfaces() -> list[Interface]:
    """IPv4 addresses of this network namespace's interfaces (psutil)."""
    stats = psutil.net_if_stats()
    out = []
    for name, addrs in psutil.net_if_addrs().items():
        stat = stats.get(name)
        for addr in addrs:
            if addr.family != socket.AF_INET:
                continue
            loop = ipaddress.IPv4Address(addr.address).is_loopback
            bcast = addr.broadcast
            if loop and not bcast and addr.netmask:
                bcast = str(ipaddress.IPv4Network(f"{addr.address}/{addr.netmask}",
                                                  strict=False).broadcast_address)
            if bcast and not loop and addr.netmask == "255.255.255.255":
                bcast = None  # a /32 (typical pod network) has no subnet to broadcast to
            out.append(Interface(name, addr.address, addr.netmask, bcast,
                                 bool(stat and stat.isup), loop))
    return out


class AddressBook:
    """Which local addresses are unicast; refreshed when an unknown one shows up."""

    def __init__(self, source: Callable[[], list[Interface]] = interfaces) -> None:
        self._source = source
        self._unicast: set[str] = set()
        self._broadcast: set[str] = set()
        self._refreshed = -1e9
        self.refresh()

    def refresh(self) -> None:
        ifaces = self._source()
        self._unicast = {i.ip for i in ifaces}
        self._broadcast = {i.broadcast for i in ifaces if i.broadcast}
        self._refreshed = time.monotonic()

    def is_local_unicast(self, address: str) -> bool:
        """True for one of this node's own unicast addresses (127/8 included)."""
        if address in self._broadcast or address == "255.255.255.255":
            return False
        ip = ipaddress.IPv4Address(address)
        if ip.is_multicast:
            return False
        if ip.is_loopback:
            return address != LOOPBACK_BROADCAST
        if address not in self._unicast and time.monotonic() - self._refreshed > 1.0:
            self.refresh()
        return address in self._unicast
