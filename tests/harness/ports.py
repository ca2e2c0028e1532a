"""Free port numbers for test servers, outside the kernel's ephemeral range.

A port picked by binding port 0 comes from the ephemeral range, and once the
probe socket is closed the kernel may give the same number to any socket bound
to port 0 meanwhile, the IOC's own included (its CA beacon and search sockets
are bound before its PVA server): the IOC then fails with "Address already in
use". Ports are therefore drawn at random from below (or above) the range in
``/proc/sys/net/ipv4/ip_local_port_range``, which the kernel never hands out by
itself, and checked free for TCP and UDP.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from pathlib import Path

#: The lowest port drawn from (below it: well-known and registered services).
LOWEST = 20000

#: Ports handed out by this process; never handed out twice.
_handed_out: set[int] = set()


def _bind(kind: int, port: int, *, reuse: bool = False) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, kind)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", port))
    except OSError:
        sock.close()
        return None
    return sock


#: Fewest numbers worth drawing from outside the ephemeral range.
ENOUGH = 1000


def _candidates() -> range:
    """The port numbers to draw from: the larger side of the ephemeral range, or
    everything from LOWEST up when the range leaves too few outside it (then a
    collision is possible again, as with port 0, but picks are still checked)."""
    try:
        low, high = (int(v) for v in
                     Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    below, above = range(LOWEST, max(LOWEST, low)), range(high + 1, 65536)
    larger = below if len(below) >= len(above) else above
    return larger if len(larger) >= ENOUGH else range(LOWEST, 65536)


_CANDIDATES = _candidates()
_RANDOM = random.Random()  # its own: a test that seeds the module's must not repeat picks


def free_ports(n: int, *, attempts: int = 200) -> list[int]:
    """``n`` distinct port numbers free for both TCP and UDP on every address.

    A CA server binds TCP and UDP on the same number, so both must be free.
    The probe sockets are held until all ``n`` are found, then closed; a port
    is never returned twice by one test process.
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(attempts):
            if len(ports) == n:
                break
            port = _RANDOM.choice(_CANDIDATES)
            if port in _handed_out or port in ports:
                continue
            tcp = _bind(socket.SOCK_STREAM, port)
            if tcp is None:
                continue
            held.append(tcp)
            udp = _bind(socket.SOCK_DGRAM, port)
            if udp is None:
                continue
            held.append(udp)
            ports.append(port)
        else:
            raise RuntimeError(f"found only {len(ports)} of {n} free ports")
        if len(ports) < n:
            raise RuntimeError(f"found only {len(ports)} of {n} free ports")
    finally:
        for sock in held:
            sock.close()
    _handed_out.update(ports)
    return ports


def free_port() -> int:
    """One port number free for both TCP and UDP."""
    return free_ports(1)[0]


def port_is_free(port: int) -> bool:
    """True when a server could bind TCP and UDP ``port`` on every address right now.

    TCP is tried with SO_REUSEADDR, as servers do, so connections left in
    TIME_WAIT by a stopped server don't count; a listening socket does.
    """
    socks = [_bind(socket.SOCK_STREAM, port, reuse=True), _bind(socket.SOCK_DGRAM, port)]
    for sock in socks:
        if sock is not None:
            sock.close()
    return all(s is not None for s in socks)


def wait_ports_free(ports: list[int], timeout: float = 10.0) -> list[int]:
    """Poll until every port is free; return those still busy at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [p for p in ports if not port_is_free(p)]
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.1)


def tcp_listening(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0
