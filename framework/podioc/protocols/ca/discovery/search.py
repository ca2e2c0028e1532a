"""Channel Access discovery done the way a traditional beamline server does it.

What caproto's asyncio server does not do, or does differently:

* **Search replies echo the client's sequence number** (caproto's are always
  1): libca counts only answers to its latest batch and otherwise paces its
  searches by timer, ~1,100 channels/s however idle the server is.

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
import logging
from collections.abc import Callable
from typing import Any

import caproto as ca

from ....config.epicsvars import parse_yes_no, split_address_list
from .beacons import send_beacons
from .interfaces import AddressBook, Interface, interfaces
from .plans import BeaconTarget, beacon_targets, search_bindings
from .relay import Relay
from .sockets import SearchSocket

log = logging.getLogger(__name__)


class SequenceEchoBroadcaster(ca.Broadcaster):  # type: ignore[misc]
    """caproto's UDP protocol state, answering with the sequence number asked with.

    A search datagram from libca starts with a version request whose
    ``parameter1`` is the datagram's sequence number (``data_type`` 1 = valid).
    The version header of the answer carries the same two fields back. Callers
    receive, process and answer one datagram without awaiting in between (as
    podioc's discovery does).
    """

    def __init__(self, our_role: Any = ca.SERVER) -> None:
        super().__init__(our_role)
        self._asked: tuple[int, int] | None = None

    def recv(self, byteslike: Any, address: Any) -> list[Any]:
        commands: list[Any] = super().recv(byteslike, address)
        self._asked = next(((c.header.data_type, c.header.parameter1) for c in commands
                            if isinstance(c, ca.VersionRequest)), None)
        return commands

    def send(self, *commands: Any) -> Any:
        if self._asked is not None and commands and isinstance(commands[0],
                                                               ca.VersionResponse):
            header = commands[0].header
            header.data_type, header.parameter1 = self._asked
        return super().send(*commands)


class _NoBroadcastBeaconNoise(logging.Filter):
    """Drop caproto's error about its 255.255.255.255 beacon socket: podioc does not
    use that socket (it beacons to interface broadcasts), so the error misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (str(record.msg).startswith("Beacon (")
                    and "socket setup failed" in str(record.msg))


_NOISE = _NoBroadcastBeaconNoise()


class Discovery:
    """Search sockets, fan-out relay and beacons of one caproto server ``Context``."""

    def __init__(self, ctx: Any, *, fanout: bool = True,
                 source: Callable[[], list[Interface]] = interfaces) -> None:
        """``fanout``: re-broadcast unicast searches (``PODIOC_CA_SEARCH_FANOUT``)."""
        self.ctx = ctx
        logging.getLogger("caproto.ctx").addFilter(_NOISE)  # idempotent
        self.fanout = fanout
        self.book = AddressBook(source)
        self._source = source
        self.broadcaster = SequenceEchoBroadcaster(ca.SERVER)
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
            commands = self.broadcaster.recv(data, src)
            self.broadcaster.process_commands(commands)
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
            sock.send_now(self.broadcaster.send(*replies), src)
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
        """Where this server's beacons go (see :func:`.plans.beacon_targets`)."""
        env = self.ctx.environ
        intf = [] if list(self.ctx.interfaces) == ["0.0.0.0"] else list(self.ctx.interfaces)
        auto = parse_yes_no("EPICS_CAS_AUTO_BEACON_ADDR_LIST",
                            env.get("EPICS_CAS_AUTO_BEACON_ADDR_LIST"), True)
        return beacon_targets(intf, split_address_list(env.get("EPICS_CAS_BEACON_ADDR_LIST")),
                              auto,
                              int(env.get("EPICS_CAS_BEACON_PORT") or 5065), self._source())

    async def beacon_loop(self, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Beacons to :meth:`beacon_targets` (caproto's own beacon sockets are closed)."""
        for _, sock in list(self.ctx.beacon_socks.values()):
            sock.close()  # caproto's 255.255.255.255 socket
        self.ctx.beacon_socks.clear()
        await send_beacons(self.ctx, self.beacon_targets(), sleep)
