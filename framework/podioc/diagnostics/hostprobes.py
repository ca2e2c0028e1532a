"""The host look-ups ``podioc doctor`` makes: interfaces, who holds a port, routes.

Nothing is sent on the network: ports are tested by binding, routes by
``connect()`` of a UDP socket (which sends nothing). Tests replace them
through :class:`Probes`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocols.ca.discovery import Interface, interfaces


@dataclass(frozen=True)
class PortUse:
    """Who holds a local port (as far as this user can see)."""

    free: bool
    holders: tuple[str, ...] = ()


@dataclass
class Probes:
    """The system look-ups doctor makes; tests replace them."""

    interfaces: Callable[[], list[Interface]] = interfaces
    tcp_port: Callable[[str, int], PortUse] = field(default=lambda a, p: tcp_port_use(a, p))
    udp_sharers: Callable[[int], tuple[str, ...]] = field(default=lambda p: udp_sharers(p))
    route: Callable[[str], str | None] = field(default=lambda a: route_error(a))
    hostname: Callable[[], str] = socket.gethostname
    files: Callable[[str], bool] = field(default=lambda p: _exists(p))


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)


def _holders(kind: str, port: int, listening_only: bool) -> tuple[str, ...]:
    try:
        import psutil

        conns = psutil.net_connections(kind=kind)
    except Exception:
        return ()
    out = []
    for conn in conns:
        if not conn.laddr or conn.laddr.port != port:
            continue
        if listening_only and conn.status != "LISTEN":
            continue
        desc = f"{conn.laddr.ip}:{port}"
        if conn.pid:
            desc += f" pid {conn.pid}"
            try:
                proc = psutil.Process(conn.pid)
                command = " ".join(proc.cmdline()) or proc.name()
                desc += f" ({command[:100]}{'...' if len(command) > 100 else ''})"
            except Exception:
                pass
        out.append(desc)
    return tuple(sorted(set(out)))


def tcp_port_use(address: str, port: int) -> PortUse:
    """Whether a server could listen on ``address:port`` now (bind test, as caproto does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return PortUse(False, _holders("tcp", port, True))
    return PortUse(True)


def udp_sharers(port: int) -> tuple[str, ...]:
    """UDP sockets already bound to ``port`` here (other CA/PVA servers)."""
    return _holders("udp", port, False)


def route_error(address: str) -> str | None:
    """``None`` if this host has a route to ``address``, else the reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.connect((address, 9))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
