"""Host names and client addresses, normalised so that rules compare addresses only."""

from __future__ import annotations

import functools
import ipaddress
import socket


@functools.lru_cache(maxsize=4096)  # called for every put and channel of a client
def normalize_ip(address: str) -> str:
    """Canonical text of an IP address (IPv4-mapped IPv6 becomes IPv4); '' if not one."""
    text = address.strip().strip("[]")
    if "%" in text:  # scoped IPv6 address
        text = text.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


@functools.lru_cache(maxsize=4096)
def peer_ip(peer: str) -> str:
    """The address part of a peer written ``ip:port``, ``[ipv6]:port`` or ``ip``."""
    text = peer.strip()
    if text.startswith("["):
        return normalize_ip(text[1:text.find("]")] if "]" in text else text[1:])
    if text.count(":") == 1:
        text = text.rsplit(":", 1)[0]
    return normalize_ip(text)


def resolve_host(name: str) -> frozenset[str]:
    """Every address ``name`` resolves to on this host (a literal address is itself).

    Uses the system resolver once, at load time; an unknown name gives an empty
    set (the rule then matches no client, which can only take rights away).
    """
    literal = normalize_ip(name)
    if literal:
        return frozenset({literal})
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    found = {normalize_ip(str(info[4][0])) for info in infos}
    found.discard("")
    return frozenset(found)
