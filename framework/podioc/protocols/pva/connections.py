"""The PVA server's connections, watched from outside pvxs (it has no hooks for this).

pvxs (inside p4p) accepts every connection, sets no keepalive, and buffers a
message of any declared size until it is complete. Every :attr:`ConnectionGuard.period`
seconds the guard reads the kernel's table of the PVA port's connections
(:mod:`podioc.util.sockdiag`, one netlink request) and pvxs's own report of
bytes it has processed per peer (its report, read as :mod:`.report` says), and:

- sets TCP keepalive and ``TCP_USER_TIMEOUT`` on each new connection
  (``PODIOC_DEAD_PEER_TIMEOUT``; pvxs itself drops a peer silent for
  ``EPICS_PVA_CONN_TMO`` x 4/3, 40 s, when its echo goes unanswered);
- **buffer bound**: shuts down a connection whose bytes received but not yet
  processed by pvxs (kernel ``tcpi_bytes_received`` minus pvxs's RX count,
  minus the kernel's unread queue) exceed ``PODIOC_PVA_MAX_BUFFER_BYTES``,
  then returns freed heap to the OS (``malloc_trim``). Between full checks
  cheap readings every 20 ms (bytes read, resident size, TCP sockets in use;
  every 100 ms while nothing stirs, every 250 ms after 3 s of that) trigger a
  check at once on growth by half the bound, or on a burst of new connections,
  so a flood overshoots by about one reading's time;
- **client cap**: beyond the cap, shuts down the oldest connections that have
  held no channel for IDLE_GRACE s, else the newest;
- counts channels (for the process-wide budget) and clients (health PVs).

A connection is shut down through a duplicate of pvxs's descriptor
(``shutdown(2)``); pvxs sees the end and cleans up as for any disconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ...limits import deadpeer, ratelimit
from ...limits.resources import IDLE_GRACE
from ...util import sockdiag
from ...util.procfile import KeptFile
from .report import Reporter, load

log = logging.getLogger(__name__)

_PEER = re.compile(r"Peer\[?([^\s\]]+?)\]?:(\d+) backlog=\d+ TX=\d+ RX=(\d+)")
#: A channel line of ``tostr(3)``: "<name> TX=<n> RX=<n>" (a peer line has "backlog=" there).
_CHANNEL = re.compile(r"\s(?!backlog=)\S+ TX=\d+ RX=\d+")
#: How often the cheap readings are taken between full checks (s).
FAST_PERIOD = 0.02
#: After STILL_AFTER s without a stir (more than STILL_BYTES read, or the resident
#: size changed by that much), readings come every STILL_PERIOD s: 50 readings a
#: second cost an idle IOC 0.7 % CPU. The first stir brings back FAST_PERIOD. (TCP
#: sockets in use are counted for the whole network namespace, the host's with
#: host networking: other processes change them all the time.)
STILL_AFTER, STILL_PERIOD, STILL_BYTES = 1.0, 0.1, 256 * 1024
#: After SLEEP_AFTER s without a stir and without a TCP socket opened or closed,
#: readings come every SLEEP_PERIOD s. On a small machine each wake-up of a sleeping
#: thread costs about 0.2 ms of CPU: 10 a second were most of an idle IOC's CPU. A
#: flood that starts then is seen up to SLEEP_PERIOD later (then FAST_PERIOD).
SLEEP_AFTER, SLEEP_PERIOD = 3.0, 0.25
#: A connection whose descriptor is not found (still in the accept queue) gets its
#: keepalive options at a later check, for this many seconds after it was first seen.
OPTIONS_WITHIN, OPTIONS_RETRY = 5.0, 0.2
#: Bytes read between two readings that make the IOC busy (a flood is far more).
BUSY_BYTES = 64 * 1024
#: While the IOC reads little, a full check runs every QUIET_GAP s while the TCP
#: sockets in use change (connections come or go), else every QUIET_CHECK s. A full
#: check costs about 3 ms (the kernel walks its whole TCP table): every 5 s it was the
#: biggest part of an idle IOC's CPU. (The readings go on: a burst of sockets is
#: still caught at once.)
QUIET_CHECK, QUIET_GAP = 30.0, 5.0
#: New TCP sockets (since the last check) that trigger a check at once: a burst of
#: connections is cut down before it takes the descriptors the rest of the IOC needs.
CONN_BURST = 32


@dataclass
class _Peer:
    first_seen: float
    last_channel: float
    options_set: bool = False


@dataclass
class Report:
    """What pvxs says about its connections: bytes processed and channels, per peer."""

    rx: dict[tuple[str, int], int] = field(default_factory=dict)
    channels: dict[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Report:
        report = cls()
        peers = list(_PEER.finditer(text))
        for index, match in enumerate(peers):
            key = (match[1], int(match[2]))
            report.rx[key] = int(match[3])
            end = peers[index + 1].start() if index + 1 < len(peers) else len(text)
            report.channels[key] = len(_CHANNEL.findall(text, match.end(), end))
        return report


class _Growth:
    """Cheap readings (a few microseconds): bytes this process read from descriptors
    (``rchar``, less these readings' own: pvxs reads with ``readv``), its resident
    size, and the TCP sockets in use in its network namespace (``/proc/net/sockstat``)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.files = [KeptFile(path)
                      for path in ("/proc/self/io", "/proc/self/statm", "/proc/net/sockstat")]
        self.own = 0  # bytes these readings read themselves

    def sample(self) -> tuple[int, int, int]:
        io, statm, sockstat = (kept.read(1024) for kept in self.files)
        rchar = int(io.split(b"\n", 1)[0].split()[1]) if io.startswith(b"rchar") else 0
        tcp = sockstat.split(b"TCP: inuse ", 1)
        inuse = int(tcp[1].split()[0]) if len(tcp) == 2 else 0
        read = rchar - self.own
        self.own += len(io) + len(statm) + len(sockstat)
        return read, int(statm.split()[1]) * self.page, inuse

    def close(self) -> None:
        for kept in self.files:
            kept.close()


def _trim_heap() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ConnectionGuard:
    """Keepalive, buffer bound, client cap and counts for the PVA server on ``port``."""

    def __init__(self, server: Any, port: int, *, max_clients: int, max_buffer: int,
                 dead_peer_timeout: float, period: float = 0.25) -> None:
        self.server = server
        self.port = port
        self.max = max_clients
        self.max_buffer = max_buffer
        self.dead_peer_timeout = dead_peer_timeout
        self.period = period
        self.peers: dict[int, _Peer] = {}  # by socket inode
        self.fds: dict[int, int] = {}  # socket inode -> descriptor
        #: Connected PVA clients / open PVA channels at the last check.
        self.count = 0
        self.channels = 0
        self.closed = 0  # connections shut down by the cap
        self.oversized = 0  # connections shut down by the buffer bound
        self._created = 0  # channels made since the last report
        self._report_at = 0.0
        self._reporter: Reporter | None = None

    # -- counts ----------------------------------------------------------------------
    def channel_count(self) -> int:
        """PVA channels open (as of the last report, plus those made since)."""
        return self.channels + self._created

    def channel_made(self) -> None:
        self._created += 1

    def report(self, detail: int) -> Report:
        """pvxs's report (:mod:`.report`: never ``Server.tostr``, which can deadlock)."""
        if self._reporter is None:
            return Report()
        report = Report.parse(self._reporter.report(detail))
        if detail >= 3:
            self.channels = sum(report.channels.values())
            self._created = 0
            self._report_at = time.monotonic()
        return report

    # -- one check ----------------------------------------------------------------------
    def check(self) -> int:
        """One pass; returns how many connections were shut down."""
        conns = sockdiag.connections(self.port)
        if conns is None:
            return 0
        now = time.monotonic()
        live = {c.inode for c in conns}
        self.peers = {ino: p for ino, p in self.peers.items() if ino in live}
        for conn in conns:
            self.peers.setdefault(conn.inode, _Peer(now, now))
        self.count = len(conns)
        if any(not p.options_set for p in self.peers.values()):
            self._set_options(conns)
        stale = now - self._report_at > (1.0 if self.channels < 10_000 else 5.0)
        over_cap = len(conns) > self.max
        report = self.report(3) if (stale or over_cap) else None
        victims: dict[int, tuple[str, tuple[Any, ...]]] = {}  # inode -> log template, args
        # buffer bound: bytes received that pvxs has not processed yet
        if any(c.bytes_received - c.rqueue > self.max_buffer for c in conns):
            rx = (report or self.report(2)).rx
            for conn in conns:
                held = conn.bytes_received - conn.rqueue - rx.get(conn.peer, conn.bytes_received)
                if held > self.max_buffer:
                    victims[conn.inode] = (
                        "closing the PVA connection from %s:%d: it sent %d bytes the server "
                        "has not processed (a message not yet complete); the limit is %d "
                        "bytes (PODIOC_PVA_MAX_BUFFER_BYTES)",
                        (*conn.peer, held, self.max_buffer))
                    self.oversized += 1
        if report is not None:
            for conn in conns:
                if report.channels.get(conn.peer, 0):
                    self.peers[conn.inode].last_channel = now
        if over_cap:
            excess = len(conns) - self.max
            # age: when the guard first saw it, then the socket's inode (mostly in
            # creation order, per CPU: a best-effort tie-break within one check)
            def age(c: sockdiag.TcpConn) -> tuple[float, int]:
                return (self.peers[c.inode].first_seen, c.inode)

            idle = sorted((c for c in conns if now - self.peers[c.inode].last_channel
                           > IDLE_GRACE and c.inode not in victims), key=age)
            idle_inodes = {c.inode for c in idle}
            rest = sorted((c for c in conns if c.inode not in victims
                           and c.inode not in idle_inodes), key=age, reverse=True)
            for conn in (idle + rest)[:excess]:
                victims[conn.inode] = (
                    "PVA client limit reached (PODIOC_MAX_CLIENTS=%d): closing the connection "
                    "from %s:%d" + (", which has held no channel for %.0f s"
                                    if conn.inode in idle_inodes else " (%.0f s old)"),
                    (self.max, *conn.peer, now - (self.peers[conn.inode].last_channel
                                                  if conn.inode in idle_inodes
                                                  else self.peers[conn.inode].first_seen)))
                self.closed += 1
        if not victims:
            return 0
        shut = self._shut(victims, {c.inode: c for c in conns})
        self.count -= shut
        if any("PODIOC_PVA_MAX_BUFFER_BYTES" in why for why, _ in victims.values()):
            time.sleep(0.05)  # let pvxs free the buffer first
            _trim_heap()
        return shut

    # -- descriptors ------------------------------------------------------------------------
    def _scan_fds(self) -> None:
        """Map socket inodes to this process's descriptors (only when new ones appear)."""
        fds: dict[int, int] = {}
        with contextlib.suppress(OSError):
            for name in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError, ValueError):
                    target = os.readlink(f"/proc/self/fd/{name}")
                    if target.startswith("socket:["):
                        fds[int(target[8:-1])] = int(name)
        self.fds = fds

    def _with_socket(self, inode: int, peer: tuple[str, int], action: Any) -> bool:
        """``action(sock)`` on the connection ``inode`` if its descriptor is still it."""
        fd = self.fds.get(inode)
        if fd is None:
            return False
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            return False
        try:
            if sock.getsockname()[1] != self.port or sock.getpeername()[1] != peer[1]:
                return False  # the descriptor was reused since the scan
            action(sock)
            return True
        except OSError:
            return False
        finally:
            sock.detach()  # the descriptor stays pvxs's

    def _set_options(self, conns: list[sockdiag.TcpConn]) -> None:
        """Keepalive and user timeout on connections seen for the first time (one still
        in the accept queue has no descriptor yet: retried for OPTIONS_WITHIN s)."""
        self._scan_fds()
        now = time.monotonic()
        for conn in conns:
            peer = self.peers[conn.inode]
            if not peer.options_set:
                applied = self._with_socket(
                    conn.inode, conn.peer, lambda s: deadpeer.apply(s, self.dead_peer_timeout))
                peer.options_set = applied or now - peer.first_seen > OPTIONS_WITHIN

    def _shut(self, victims: dict[int, tuple[str, tuple[Any, ...]]],
              conns: dict[int, Any]) -> int:
        self._scan_fds()
        shut = 0
        for inode, (template, args) in victims.items():
            conn = conns[inode]
            log.warning(template, *args)
            if self._with_socket(inode, conn.peer, lambda s: s.shutdown(socket.SHUT_RDWR)):
                shut += 1
        return shut

    def _next_check(self, checked: float, due: float, quiet: bool,
                    sockets_changed: bool) -> float:
        """When the next full check is due: soon while a connection waits for its
        options, every ``period`` while busy, else QUIET_GAP or QUIET_CHECK s after
        the last one."""
        if any(not p.options_set for p in self.peers.values()):
            return checked + OPTIONS_RETRY
        if not quiet:
            return due
        return checked + (QUIET_GAP if sockets_changed else QUIET_CHECK)

    # -- the loop ------------------------------------------------------------------------
    def _loop(self, stop: threading.Event) -> None:
        """A full check every ``period`` while the IOC is busy, and at once when the
        process has read or grown by half the buffer bound, or :data:`CONN_BURST`
        sockets were opened, since the last one (caught within one reading, not a
        whole period later). While it reads less than :data:`BUSY_BYTES` between
        readings, a full check runs only every :data:`QUIET_GAP` s while sockets come
        and go, else every :data:`QUIET_CHECK` s."""
        watch = _Growth()
        half = self.max_buffer // 2
        try:
            mark = last = watch.sample()
            now = time.monotonic()
            due, checked, busy_until, stirred, moved = now + self.period, now, now, now, now
            while not stop.is_set():
                # a plain sleep: a third cheaper per wake-up than Event.wait's timed lock
                time.sleep(FAST_PERIOD if now - stirred < STILL_AFTER else
                           STILL_PERIOD if now - max(stirred, moved) < SLEEP_AFTER
                           else SLEEP_PERIOD)
                now = time.monotonic()
                current = watch.sample()
                if current[0] - last[0] > BUSY_BYTES:
                    busy_until = now + 1.0
                if (current[0] - last[0] > STILL_BYTES
                        or abs(current[1] - last[1]) > STILL_BYTES):
                    stirred = now  # the next readings come every FAST_PERIOD again
                if current[2] != last[2]:
                    moved = now
                last = current
                grown = (current[0] - mark[0] > half or current[1] - mark[1] > half
                         or current[2] - mark[2] >= CONN_BURST)
                if not grown and now < self._next_check(checked, due, now >= busy_until,
                                                        current[2] != mark[2]):
                    continue
                try:
                    self.check()
                except Exception:
                    log.exception("PVA connection check failed")
                mark, due, checked = watch.sample(), time.monotonic() + self.period, now
        finally:
            watch.close()

    async def run(self) -> None:
        """Check in a thread of its own until cancelled."""
        ratelimit.install()
        self._reporter = load(self.server)
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(stop,), daemon=True,
                                  name="podioc-pva-guard")
        thread.start()
        try:
            await asyncio.Event().wait()
        finally:
            stop.set()
            # the server is stopped after this task: no report may be running then
            thread.join(2.0)
