"""Relays that make a real client reach an IOC from another loopback address.

The kernel gives a connection to 127.0.0.1 the source address 127.0.0.1,
whichever client makes it; CA and PVA clients cannot bind their sockets.
These relays accept a client on 127.0.0.1 and open the connection to the IOC
from a chosen source address (127.0.0.2, 127.0.0.3, ...), so the IOC sees the
client "at" that address, with real client libraries and no namespaces:

- :class:`CARelay`: answers CA searches itself (any name; reply "connect to my
  TCP port") and relays TCP. Client env: :meth:`CARelay.client_env`.
- :class:`PVARelay`: a PVA name server (``EPICS_PVA_NAME_SERVERS``) relaying TCP
  and rewriting search replies to point at itself. Client conf: :meth:`PVARelay.conf`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import caproto as ca

Rewrite = Callable[[bytes], tuple[bytes, bytes]]


class TcpRelay:
    """Accept on 127.0.0.1:<port>; connect to ``target`` from ``source_ip``; pipe bytes.

    ``rewrite(buffer) -> (to_send, rest)`` may edit the server-to-client stream;
    ``recorded`` collects the client-to-server bytes of the first connection.
    """

    def __init__(self, target: tuple[str, int], source_ip: str,
                 rewrite_factory: Callable[[], Rewrite] | None = None) -> None:
        self.recorded = bytearray()
        self.target = target
        self.source_ip = source_ip
        self.rewrite_factory = rewrite_factory
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                upstream.bind((self.source_ip, 0))
                upstream.connect(self.target)
            except OSError:
                client.close()
                upstream.close()
                continue
            self.connections += 1
            self._socks += [client, upstream]
            rewrite = self.rewrite_factory() if self.rewrite_factory else None
            tap = self.recorded if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, upstream, None, tap),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, rewrite),
                             daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, rewrite: Rewrite | None,
              tap: bytearray | None = None) -> None:
        pending = b""
        try:
            while data := src.recv(65536):
                if tap is not None:
                    tap += data
                if rewrite is None:
                    dst.sendall(data)
                    continue
                out, pending = rewrite(pending + data)
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CARelay(TcpRelay):
    """A CA "server" on 127.0.0.1 that forwards every circuit from ``source_ip``."""

    def __init__(self, ca_port: int, source_ip: str) -> None:
        super().__init__(("127.0.0.1", ca_port), source_ip)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp_port = self.udp.getsockname()[1]
        threading.Thread(target=self._answer_searches, daemon=True, name="relay-udp").start()

    def _answer_searches(self) -> None:
        broadcaster = ca.Broadcaster(our_role=ca.SERVER)
        while not self._closed:
            try:
                data, addr = self.udp.recvfrom(65536)
            except OSError:
                return
            try:
                commands = broadcaster.recv(data, addr)
            except ca.RemoteProtocolError:
                continue
            replies = [ca.SearchResponse(self.port, None, c.cid, 13)
                       for c in commands if isinstance(c, ca.SearchRequest)]
            if replies:
                with contextlib.suppress(OSError):
                    self.udp.sendto(broadcaster.send(ca.VersionResponse(13), *replies), addr)

    def client_env(self) -> dict[str, str]:
        """Environment for a CA client (caproto, pyepics) to go through this relay."""
        return {"EPICS_CA_ADDR_LIST": f"127.0.0.1:{self.udp_port}",
                "EPICS_CA_AUTO_ADDR_LIST": "NO",
                "EPICS_CA_SERVER_PORT": str(self.udp_port),
                "EPICS_CA_MAX_ARRAY_BYTES": "1000000"}

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError):
            self.udp.close()


_PVA_HEADER = 8
_PVA_SEARCH_RESPONSE = 0x04
_MAPPED_LOOPBACK = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])


def pva_search_rewriter(port: int) -> Rewrite:
    """Rewrite PVA search replies in a server-to-client stream to name 127.0.0.1:``port``."""

    def rewrite(buffer: bytes) -> tuple[bytes, bytes]:
        out = bytearray()
        offset = 0
        while len(buffer) - offset >= _PVA_HEADER:
            magic, _version, flags, command = buffer[offset:offset + 4]
            if magic != 0xCA:  # not PVA: pass everything through untouched
                return bytes(out) + buffer[offset:], b""
            order = ">" if flags & 0x80 else "<"
            control = bool(flags & 0x01)
            size = 0 if control else struct.unpack_from(order + "I", buffer, offset + 4)[0]
            end = offset + _PVA_HEADER + size
            if end > len(buffer):
                break
            message = bytearray(buffer[offset:end])
            if not control and command == _PVA_SEARCH_RESPONSE and size >= 34:
                body = _PVA_HEADER + 16  # after GUID (12) and search sequence id (4)
                message[body:body + 16] = _MAPPED_LOOPBACK
                struct.pack_into(order + "H", message, body + 16, port)
            out += message
            offset = end
        return bytes(out), buffer[offset:]

    return rewrite


class PVARelay(TcpRelay):
    """A PVA name server on 127.0.0.1 whose every connection reaches the IOC from
    ``source_ip``; search replies are rewritten so data connections come here too."""

    def __init__(self, pva_port: int, source_ip: str) -> None:
        super().__init__(("127.0.0.1", pva_port), source_ip,
                         rewrite_factory=lambda: pva_search_rewriter(self.port))

    def conf(self) -> dict[str, str]:
        """p4p client configuration (``Context('pva', conf=..., useenv=False)``)."""
        return {"EPICS_PVA_NAME_SERVERS": f"127.0.0.1:{self.port}",
                "EPICS_PVA_ADDR_LIST": "", "EPICS_PVA_AUTO_ADDR_LIST": "NO"}
