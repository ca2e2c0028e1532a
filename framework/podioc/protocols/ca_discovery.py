"""Channel Access discovery done the way a traditional beamline server does it.

Three things caproto's asyncio server does not do, or does differently:

* **Beacons** go to each interface's broadcast address (as rsrv does), plus
  ``EPICS_CAS_BEACON_ADDR_LIST``; ``EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO`` drops
  the interface part. caproto sends to 255.255.255.255, which fails with
  "Network is unreachable" on a host without a default route and carries a
  wrong address.
* **Search sockets** receive the datagram's destination address
  (``IP_PKTINFO``), answer once through the socket that received the search
  (caproto answers through every UDP socket, so a multi-interface server
  answered each search several times), and for an interface named in
  ``EPICS_CAS_INTF_ADDR_LIST`` also listen on that interface's broadcast
  address (a socket bound to a unicast address never sees broadcasts).
* **Unicast fan-out.** Several servers on one node share the UDP search port;
  the kernel hands a *unicast* search (a client whose address list names the
  node) to only one of them. The podioc server that gets one re-broadcasts
  its searches on the node's loopback (127.255.255.255, same port) from a
  private relay socket, with fresh search ids, and relays every answer back
  to the client from the search port, naming the address the client used and
  the answering server's TCP port. Every CA server on the node answers, podioc
  or not (rsrv, caproto), as they all listen on the loopback broadcast.

  No loops and no duplicates: only a search whose destination was one of the
  node's *unicast* addresses is forwarded (a forwarded search is a broadcast,
  so nobody forwards it again); the forwarding server ignores the copy its own
  relay sends (it has answered directly); each relayed answer is matched to
  its client by the relay's search id and expires after a few seconds.
  ``PODIOC_CA_SEARCH_FANOUT=NO`` turns the fan-out off.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import caproto as ca
import psutil

log = logging.getLogger(__name__)

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; CPython does not export it
LOOPBACK_BROADCAST = "127.255.255.255"
MAX_UDP = 0xFFFF - 16
HEADER = struct.Struct(">HHHHII")
CMD_VERSION, CMD_SEARCH, CMD_BEACON, CMD_NOT_FOUND = 0, 6, 13, 14
DONT_REPLY = 10
MINOR_VERSION = 13
ANY_ADDRESS = 0xFFFFFFFF  # "use the address the datagram came from"
RELAY_TTL = 3.0
RELAY_MAX = 8192
_TRUE = {"yes", "y", "true", "1", "on"}


# -- interfaces ------------------------------------------------------------------
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


def parse_flag(value: str | None, default: bool) -> bool:
    """An EPICS YES/NO variable."""
    if value is None or not str(value).strip():
        return default
    return str(value).strip().lower() in _TRUE


def split_list(value: str | None) -> list[str]:
    """An EPICS address list (spaces or commas)."""
    return [v for v in (value or "").replace(",", " ").split() if v]


def host_port(entry: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` of an address list, the host resolved to an IPv4 address."""
    host, _, port = entry.partition(":")
    return socket.gethostbyname(host), int(port) if port else default_port


# -- plans (shared with ``podioc doctor``) -----------------------------------------
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


# -- wire format (only what the relay touches) -----------------------------------
@dataclass
class Message:
    """One CA message: header fields and payload."""

    command: int
    data_type: int
    data_count: int
    p1: int
    p2: int
    payload: bytes = b""

    def encode(self) -> bytes:
        return HEADER.pack(self.command, len(self.payload), self.data_type, self.data_count,
                           self.p1, self.p2) + self.payload


def decode(data: bytes) -> list[Message]:
    """Split a datagram into messages (stops at anything malformed)."""
    out = []
    offset = 0
    while offset + HEADER.size <= len(data):
        cmd, size, dtype, count, p1, p2 = HEADER.unpack_from(data, offset)
        offset += HEADER.size
        if size == 0xFFFF or offset + size > len(data):
            break
        out.append(Message(cmd, dtype, count, p1, p2, bytes(data[offset:offset + size])))
        offset += size
    return out


def _ip_int(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def _ip_str(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


# -- sockets ---------------------------------------------------------------------
class SearchSocket:
    """A UDP search socket reporting each datagram's destination address.

    Quacks like caproto's ``_UdpTransportWrapper`` (``sendto``/``close``) so it
    can sit in ``Context.udp_socks``.
    """

    def __init__(self, binding: SearchBinding, sink: Callable[[SearchSocket, bytes,
                                                                  tuple[str, int], str], None],
                 ) -> None:
        self.binding = binding
        self.reply: SearchSocket = self
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        with contextlib.suppress(OSError):  # without it (not Linux): no fan-out, all else works
            self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.sock.setblocking(False)
        self._sink = sink
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self.sock.bind((binding.address, binding.port))
        except OSError:
            self.sock.close()
            raise

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, anc, _flags, src = self.sock.recvmsg(MAX_UDP, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable from an earlier reply
                log.debug("search socket %s: %s", self.binding.address, exc)
                continue
            dest = self.binding.address
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    dest = socket.inet_ntoa(value[8:12])
            if data:
                self._sink(self, data, src, dest)

    async def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.send_now(data, address)

    def send_now(self, data: bytes, address: tuple[str, int]) -> None:
        """Send without waiting; a full buffer drops the datagram (UDP semantics)."""
        try:
            self.reply.sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            log.debug("dropped a reply to %s:%d (send buffer full)", *address)
        except OSError as exc:
            log.debug("reply to %s:%d failed: %s", *address, exc)

    def close(self) -> None:
        if self._loop is not None and self.sock.fileno() != -1:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


@dataclass
class _Pending:
    client: tuple[str, int]
    cid: int
    target: str  # the address the client sent its search to
    via: SearchSocket
    expires: float
    sequence: tuple[int, int]  # (flag, number) of the client's version header, echoed


@dataclass
class Relay:
    """Re-broadcasts unicast searches on the node's loopback and relays the answers."""

    port: int  # the CA search port shared by the node's servers
    sock: socket.socket = field(init=False)
    address: tuple[str, int] = field(init=False)
    pending: collections.OrderedDict[int, _Pending] = field(
        default_factory=collections.OrderedDict)
    forwarded: int = 0
    relayed: int = 0
    _next_id: int = 1
    _loop: asyncio.AbstractEventLoop | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.setblocking(False)
        try:
            self.sock.bind(("127.0.0.1", 0))
        except OSError:
            self.sock.close()
            raise
        self.address = self.sock.getsockname()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def _new_id(self) -> int:
        rid = self._next_id
        self._next_id = self._next_id % 0xFFFFFFF0 + 1
        return rid

    def _expire(self, now: float) -> None:
        while self.pending:
            first = next(iter(self.pending.values()))
            if first.expires > now and len(self.pending) <= RELAY_MAX:
                break
            self.pending.popitem(last=False)

    def forward(self, data: bytes, client: tuple[str, int], target: str,
                via: SearchSocket) -> None:
        """Re-broadcast the searches of one datagram on the loopback."""
        now = time.monotonic()
        self._expire(now)
        out = [Message(CMD_VERSION, 0, MINOR_VERSION, 0, 0)]
        sequence = (0, 0)
        for msg in decode(data):
            if msg.command == CMD_VERSION:
                sequence = (msg.data_type, msg.p1)
            if msg.command != CMD_SEARCH:
                continue
            rid = self._new_id()
            self.pending[rid] = _Pending(client, msg.p1, target, via, now + RELAY_TTL,
                                         sequence)
            out.append(Message(CMD_SEARCH, DONT_REPLY, MINOR_VERSION, rid, rid, msg.payload))
        if len(out) == 1:
            return
        try:
            self.sock.sendto(b"".join(m.encode() for m in out), (LOOPBACK_BROADCAST, self.port))
            self.forwarded += 1
        except OSError as exc:
            log.debug("search fan-out failed: %s", exc)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, src = self.sock.recvfrom(MAX_UDP)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("relay socket: %s", exc)
                continue
            self.relay(data, src)

    def relay(self, data: bytes, src: tuple[str, int]) -> None:
        """Send each answer in ``data`` on to the client that asked."""
        now = time.monotonic()
        grouped: dict[tuple[tuple[str, int], int], tuple[_Pending, list[Message]]] = {}
        for msg in decode(data):
            if msg.command != CMD_SEARCH:
                continue  # NOT_FOUND is never relayed; the version header is rebuilt
            entry = self.pending.get(msg.p2)
            if entry is None or entry.expires < now:
                continue
            server_ip = msg.p1
            if server_ip == ANY_ADDRESS or ipaddress.IPv4Address(server_ip).is_loopback:
                # The answer came over the loopback: name the address the client used.
                server_ip = _ip_int(entry.target)
            answer = Message(CMD_SEARCH, msg.data_type, 0, server_ip, entry.cid,
                             msg.payload or struct.pack(">H6x", MINOR_VERSION))
            key = (entry.client, id(entry.via))
            grouped.setdefault(key, (entry, []))[1].append(answer)
        for (client, _), (entry, answers) in grouped.items():
            header = Message(CMD_VERSION, entry.sequence[0], MINOR_VERSION,
                             entry.sequence[1], 0)
            entry.via.send_now(b"".join(m.encode() for m in [header, *answers]), client)
            self.relayed += len(answers)
            log.debug("relayed %d search answer(s) from %s:%d to %s:%d", len(answers),
                      *src, *client)


# -- the server side -------------------------------------------------------------
class _NoBroadcastBeaconNoise(logging.Filter):
    """Drop caproto's error about its 255.255.255.255 beacon socket: podioc does not
    use that socket (it beacons to interface broadcasts), so the error misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (str(record.msg).startswith("Beacon (")
                    and "socket setup failed" in str(record.msg))


_NOISE = _NoBroadcastBeaconNoise()


class Discovery:
    """Search sockets, fan-out relay and beacons of one caproto server ``Context``."""

    def __init__(self, ctx: Any, env: Mapping[str, str] | None = None,
                 source: Callable[[], list[Interface]] = interfaces) -> None:
        self.ctx = ctx
        logging.getLogger("caproto.ctx").addFilter(_NOISE)  # idempotent
        env = os.environ if env is None else env
        self.fanout = parse_flag(env.get("PODIOC_CA_SEARCH_FANOUT"), True)
        self.book = AddressBook(source)
        self._source = source
        self.extra: list[SearchSocket] = []  # broadcast-address sockets
        self.relay: Relay | None = None
        self.answered = 0

    # sockets -------------------------------------------------------------------
    def _sink(self, sock: SearchSocket, data: bytes, src: tuple[str, int], dest: str) -> None:
        """Answer at once, from the socket's reader callback (``handle`` never awaits)."""
        try:
            self.handle(sock, data, src, dest)
        except Exception:
            log.exception("CA search from %s:%d failed", *src)

    async def bind(self, interface: str) -> None:
        """Open the search socket(s) of one interface (replaces caproto's)."""
        old = self.ctx.udp_socks.pop(interface, None)
        if old is not None:
            old.close()
        for extra in [s for s in self.extra if s.binding.interface == interface]:
            extra.close()
            self.extra.remove(extra)
        main: SearchSocket | None = None
        for binding in search_bindings([interface], self.ctx.ca_server_port, self._source()):
            try:
                sock = SearchSocket(binding, self._sink)
            except OSError as exc:
                if binding.broadcast_only:
                    log.warning("cannot listen for CA searches on %s:%d (%s); clients that "
                                "broadcast there will not find this IOC", binding.address,
                                binding.port, exc)
                    continue
                raise
            if binding.broadcast_only:
                assert main is not None
                sock.reply = main
                self.extra.append(sock)
            else:
                main = sock
                self.ctx.udp_socks[interface] = sock
            sock.start()
        if self.fanout and self.relay is None:
            try:
                self.relay = Relay(self.ctx.ca_server_port)
                self.relay.start()
            except OSError as exc:
                log.warning("no CA search fan-out (loopback unusable: %s): with several "
                            "IOCs on this node a unicast search finds only one", exc)
                self.fanout = False

    def close(self) -> None:
        for sock in self.extra:
            sock.close()
        self.extra.clear()
        if self.relay is not None:
            self.relay.close()
            self.relay = None

    # searches ------------------------------------------------------------------
    async def receive_loop(self) -> None:
        """Searches are answered by the sockets' reader callbacks; this task only owns
        the extra sockets and the relay, closing them when the server stops."""
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    def handle(self, sock: SearchSocket, data: bytes, src: tuple[str, int], dest: str) -> None:
        """One search datagram."""
        if self.relay is not None and src == self.relay.address:
            return  # our own fan-out: answered directly already
        ctx = self.ctx
        try:
            commands = ctx.broadcaster.recv(data, src)
            ctx.broadcaster.process_commands(commands)
        except ca.RemoteProtocolError as exc:
            log.debug("bad datagram from %s:%d: %s", *src, exc)
            return
        if src[0] in ctx.ignore_addresses:
            return
        replies: list[Any] = []
        version = False
        searched = False
        for command in commands:
            if isinstance(command, ca.VersionRequest):
                version = True
            elif isinstance(command, ca.SearchRequest):
                searched = True
                if self._known(command.name):
                    replies.append(ca.SearchResponse(ctx.port, None, command.cid,
                                                     ca.DEFAULT_PROTOCOL_VERSION))
        if replies:
            if version:
                replies.insert(0, ca.VersionResponse(ca.DEFAULT_PROTOCOL_VERSION))
            sock.send_now(ctx.broadcaster.send(*replies), src)
            self.answered += len(replies) - int(version)
        if (searched and self.relay is not None and not sock.binding.broadcast_only
                and self.book.is_local_unicast(dest)):
            self.relay.forward(data, src, dest, sock)

    def _known(self, name: str) -> bool:
        try:
            return self.ctx[name] is not None
        except (KeyError, ca.CaprotoError):
            return False

    # beacons -------------------------------------------------------------------
    def beacon_targets(self) -> list[BeaconTarget]:
        env = self.ctx.environ
        intf = [] if list(self.ctx.interfaces) == ["0.0.0.0"] else list(self.ctx.interfaces)
        return beacon_targets(intf, split_list(env.get("EPICS_CAS_BEACON_ADDR_LIST")),
                              parse_flag(env.get("EPICS_CAS_AUTO_BEACON_ADDR_LIST"), True),
                              int(env.get("EPICS_CAS_BEACON_PORT") or 5065), self._source())

    async def beacon_loop(self, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Beacons, starting fast and backing off to EPICS_CAS_BEACON_PERIOD (as caproto)."""
        for _, sock in list(self.ctx.beacon_socks.values()):
            sock.close()  # caproto's 255.255.255.255 socket
        self.ctx.beacon_socks.clear()
        targets = self.beacon_targets()
        if not targets:
            log.warning("CA beacons are off: EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO and "
                        "EPICS_CAS_BEACON_ADDR_LIST is empty")
            return
        log.info("CA beacons to %s", ", ".join(f"{t.address}:{t.port}" for t in targets))
        period_max = float(self.ctx.environ.get("EPICS_CAS_BEACON_PERIOD") or 15.0)
        period = 0.02
        failed: set[tuple[str, int]] = set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
            while True:
                for target in targets:
                    beacon = ca.Beacon(MINOR_VERSION, self.ctx.port, self.ctx.beacon_count,
                                       target.announce)
                    key = (target.address, target.port)
                    try:
                        sock.sendto(bytes(beacon), key)
                        failed.discard(key)
                    except OSError as exc:
                        if key not in failed:
                            failed.add(key)
                            log.warning("CA beacon to %s:%d failed: %s", *key, exc)
                self.ctx.beacon_count += 1
                period = min(period_max, period * 2)
                await sleep(period)
