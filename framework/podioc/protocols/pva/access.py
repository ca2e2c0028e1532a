"""Access rules and the client cap on PVAccess (p4p).

What p4p lets a Python server see, and so what podioc enforces:

- **channel creation** (``DynamicProvider.makeChannel(name, peer)``): the
  client's address only. A client whose address gets no READ from the rules
  for any user is refused the channel (it cannot get or monitor). A rule that
  grants READ to some users (UAG) only cannot be checked here: p4p does not
  pass the account to channel creation, and SharedPV answers gets and
  monitors itself. So on PVA, read rights are per host; write rights below
  are per user and host.
- **put** (``ServerOperation.peer()`` and ``.account()``): refused with an
  error unless the rules grant WRITE to that account at that address.
- a SIGHUP reload applies to every later channel and put; channels already
  open keep reading (PVA has no way to revoke a channel from p4p).
- **client cap**: pvxs accepts every connection; podioc checks the server's
  established connections once a second and shuts down the newest ones
  beyond ``PODIOC_MAX_CLIENTS`` (logged). The check reads the kernel's whole
  TCP table (psutil), which was most of an idle IOC's CPU; it is skipped while
  the process's set of sockets is unchanged (a cheap look at /proc/self/fd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import psutil
from p4p.server import DynamicProvider

from ...access.acf import Access
from ...access.hosts import peer_ip
from ...access.policy import AccessPolicy
from ...errors import PutRefused
from ...limits import ratelimit
from ...limits.resources import Limits
from ...model.state import PV

log = logging.getLogger(__name__)

class _Channels:
    """``DynamicProvider`` handler: the SharedPVs, minus channels the rules refuse."""

    def __init__(self, shared: dict[str, Any], policy: AccessPolicy) -> None:
        self.shared = shared
        self.policy = policy

    def testChannel(self, name: str) -> bool:
        return name in self.shared

    def makeChannel(self, name: str, peer: str) -> Any:
        ip = peer_ip(peer)
        if self.policy.current.rights(name, None, ip) is Access.NONE:
            log.warning("PVA channel %s refused to %s: no read access", name, peer)
            return None  # p4p answers the client "Refused to create Channel"
        return self.shared[name]


def make_provider(shared: dict[str, Any], policy: AccessPolicy | None) -> Any:
    """What to give p4p's ``Server(providers=[...])``; keep a reference to it.

    Without rules: the plain dict (p4p's StaticProvider, answered in C++).
    """
    if policy is None:
        return shared
    return DynamicProvider("podioc-access", _Channels(shared, policy))


def put_guard(policy: AccessPolicy | None) -> Callable[[PV, Any], None] | None:
    """A check run before each PVA put: raises PutRefused without WRITE."""
    if policy is None:
        return None

    def guard(pv: PV, op: Any) -> None:
        peer = str(op.peer())
        account = str(op.account())
        access, trap = policy.current.decide(pv.name, account, peer_ip(peer))
        if access < Access.WRITE:
            log.info("PVA put to %s refused: %s at %s has no write access", pv.name,
                     account, peer)
            raise PutRefused(f"{pv.name}: no write access for {account} at {peer_ip(peer)}")
        if trap:
            log.info("TRAPWRITE: PVA put to %s by %s at %s", pv.name, account, peer)

    return guard


class ConnectionCap:
    """Keeps the PVA server's established TCP connections at most ``limits.max_clients``."""

    def __init__(self, limits: Limits, port: int, period: float = 1.0) -> None:
        self.max = limits.max_clients
        self.port = port
        self.period = period
        self.first_seen: dict[tuple[str, int], float] = {}
        self.closed = 0
        #: Connected PVA clients at the last check (the PVA_CLIENTS health PV).
        self.count = 0
        #: TCP table scans done (a test checks that an idle server does none).
        self.scans = 0
        self._sockets: frozenset[str] | None = None

    def check(self) -> int:
        """Shut down connections beyond the cap (newest first); returns how many."""
        sockets = _own_sockets()
        if sockets is not None and sockets == self._sockets and self.count <= self.max:
            return 0  # no socket opened or closed since the last scan: nothing new
        self._sockets = sockets
        self.scans += 1
        try:
            conns = [c for c in psutil.Process().net_connections(kind="tcp")
                     if c.status == psutil.CONN_ESTABLISHED and c.laddr
                     and c.laddr.port == self.port and c.raddr]
        except psutil.Error:
            return 0
        now = time.monotonic()
        seen = {}
        for conn in conns:
            key = (conn.raddr.ip, conn.raddr.port)
            seen[key] = self.first_seen.get(key, now)
        self.first_seen = seen
        self.count = len(conns)
        if len(conns) <= self.max:
            return 0
        conns.sort(key=lambda c: (seen[(c.raddr.ip, c.raddr.port)], c.fd))
        shut = 0
        for conn in conns[self.max:]:
            if conn.fd is None or conn.fd < 0:
                continue
            log.warning("PVA client limit reached (PODIOC_MAX_CLIENTS=%d): closing the "
                        "connection from %s:%d", self.max, conn.raddr.ip, conn.raddr.port)
            with contextlib.suppress(OSError):
                dup = socket.socket(fileno=os.dup(conn.fd))
                try:  # the fd may have been reused since the listing: check it is the same
                    if (dup.getpeername()[:2] == (conn.raddr.ip, conn.raddr.port)
                            and dup.getsockname()[1] == self.port):
                        dup.shutdown(socket.SHUT_RDWR)  # pvxs sees the end and cleans up
                        shut += 1
                finally:
                    dup.close()  # closes our duplicate only
        self.closed += shut
        self.count -= shut
        return shut

    async def run(self) -> None:
        ratelimit.install()
        while True:
            await asyncio.sleep(self.period)
            await asyncio.to_thread(self.check)  # reading the socket table may take a while


def _own_sockets() -> frozenset[str] | None:
    """This process's open sockets (``socket:[inode]``), None where /proc is unreadable."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(target)
    return frozenset(found)
