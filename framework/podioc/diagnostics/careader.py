"""A minimal Channel Access reader for ``podioc probe``: one search, one circuit.

caproto's synchronous client searches from a fresh ``SO_REUSEADDR`` socket and
opens a new circuit for every read. With server ports inside the ephemeral
range (as tests pick them) the kernel may give that socket the IOC's own CA
port: the search reply then goes back to the IOC and the read times out (about
once in 30,000 reads here). This reader's socket has no ``SO_REUSEADDR``, so it
never shares a port, and it keeps its one circuit for all reads of a probe.
Built on caproto's public sans-I/O objects.
"""

from __future__ import annotations

import contextlib
import getpass
import random
import socket
import time
from typing import Any

import caproto as ca


class CaReadError(Exception):
    """The PV could not be found, connected or read in time."""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return "podioc-probe"


def search(name: str, addresses: list[tuple[str, int]], timeout: float) -> tuple[str, int]:
    """The (host, port) of the server answering a search for ``name``."""
    broadcaster = ca.Broadcaster(our_role=ca.CLIENT)
    cid = random.randint(0, 0xFFFF)
    request = broadcaster.send(ca.VersionRequest(0, ca.DEFAULT_PROTOCOL_VERSION),
                               ca.SearchRequest(name, cid, ca.DEFAULT_PROTOCOL_VERSION))
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("", 0))
        resend = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= resend:
                for address in addresses:
                    with contextlib.suppress(OSError):
                        sock.sendto(request, address)
                resend = now + max(0.2, timeout / 4)
            sock.settimeout(max(0.01, min(resend, deadline) - now))
            try:
                data, source = sock.recvfrom(0xFFFF)
            except TimeoutError:
                continue
            try:
                commands = broadcaster.recv(data, source)
            except ca.CaprotoError:
                continue
            for command in commands:
                if isinstance(command, ca.SearchResponse) and command.cid == cid:
                    host, port = ca.extract_address(command)
                    return str(host), int(port)
    raise CaReadError(f"no server answered a search for {name!r} within {timeout:.1f} s "
                      f"(searched {', '.join(f'{h}:{p}' for h, p in addresses)})")


class CaReader:
    """One channel on one circuit; :meth:`read` may be called repeatedly."""

    def __init__(self, name: str, addresses: list[tuple[str, int]], timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        address = search(name, addresses, timeout)
        self.circuit = ca.VirtualCircuit(our_role=ca.CLIENT, address=address, priority=0)
        self.channel = ca.ClientChannel(name, self.circuit)
        self.sock = socket.create_connection(address, timeout)
        try:
            self._send(ca.VersionRequest(priority=0, version=ca.DEFAULT_PROTOCOL_VERSION),
                       self.channel.host_name(socket.gethostname()),
                       self.channel.client_name(_user()), self.channel.create())
            self._until(lambda _: self.channel.states[ca.CLIENT] is ca.CONNECTED,
                        "connecting")
        except BaseException:
            self.sock.close()
            raise

    def _send(self, *commands: Any) -> None:
        self.sock.sendall(b"".join(bytes(b) for b in self.circuit.send(*commands)))

    def _until(self, done: Any, what: str) -> Any:
        """Receive until ``done(command)`` is true for a command; return that command."""
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(0x10000)
            except TimeoutError:
                break
            commands, _ = self.circuit.recv(data)
            for command in commands:
                if command is ca.DISCONNECTED:
                    raise CaReadError(f"the server closed the circuit while {what} {self.name}")
                self.circuit.process_command(command)
                if isinstance(command, ca.ErrorResponse | ca.CreateChFailResponse):
                    raise CaReadError(f"the server refused {what} {self.name}: {command}")
                if done(command):
                    return command
        raise CaReadError(f"no answer within {self.timeout:.1f} s while {what} {self.name}")

    def read(self) -> Any:
        """The PV's value as caproto decodes it (an array of one for a scalar)."""
        request = self.channel.read(notify=True)
        self._send(request)
        reply = self._until(lambda c: isinstance(c, ca.ReadNotifyResponse)
                            and c.ioid == request.ioid, "reading")
        return reply.data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.channel.states[ca.CLIENT] is ca.CONNECTED:
                self._send(self.channel.clear())
        self.sock.close()
