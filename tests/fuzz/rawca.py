"""A minimal Channel Access client on a raw socket (caproto's sans-I/O layer).

It can bind its socket to any local address and claim any host and user name
(CA_PROTO_HOST_NAME / CA_PROTO_CLIENT_NAME), which real clients don't let a
test choose. Requests go out exactly as a client would send them; replies are
parsed and returned.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import caproto as ca


class RawCAError(AssertionError):
    """The server did not answer as expected."""


class RawCA:
    """One CA circuit from ``source_ip`` to ``127.0.0.1:port``."""

    def __init__(self, port: int, *, source_ip: str = "127.0.0.1", host: str = "raw",
                 user: str = "raw", timeout: float = 5.0, server: str = "127.0.0.1") -> None:
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((source_ip, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((server, port))
        self.circuit = ca.VirtualCircuit(ca.CLIENT, (server, port), 0)
        self.inbox: list[Any] = []
        self._ids = 0
        self.send(ca.VersionRequest(priority=0, version=13), ca.HostNameRequest(host),
                  ca.ClientNameRequest(user))

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def send(self, *commands: Any) -> None:
        self.sock.sendall(b"".join(bytes(b) for b in self.circuit.send(*commands)))

    def wait_for(self, predicate: Any, timeout: float | None = None) -> Any:
        """The first received command matching ``predicate`` (others stay in the inbox)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for command in self.inbox:
                if predicate(command):
                    self.inbox.remove(command)
                    return command
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RawCAError(f"no matching reply in {timeout or self.timeout} s; "
                                 f"got {self.inbox!r}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise RawCAError("the server closed the connection")
            commands, _ = self.circuit.recv(data)
            for command in commands:
                self.circuit.process_command(command)
                self.inbox.append(command)

    def connect(self, name: str) -> tuple[Any, int]:
        """Create a channel; returns (channel, access rights bits)."""
        chan = ca.ClientChannel(name, self.circuit)
        self.send(chan.create())
        rights = self.wait_for(lambda c: isinstance(c, ca.AccessRightsResponse)
                               and c.cid == chan.cid)
        self.wait_for(lambda c: isinstance(c, ca.CreateChanResponse) and c.cid == chan.cid)
        return chan, int(rights.access_rights)

    def read(self, chan: Any) -> Any:
        """READ_NOTIFY; the ReadNotifyResponse (check ``.status``) or an ErrorResponse."""
        ioid = self._next_id()
        self.send(chan.read(ioid=ioid))
        return self.wait_for(lambda c: (isinstance(c, ca.ReadNotifyResponse) and c.ioid == ioid)
                             or isinstance(c, ca.ErrorResponse))

    def write(self, chan: Any, data: Any) -> Any:
        """WRITE_NOTIFY; the WriteNotifyResponse (check ``.status``)."""
        ioid = self._next_id()
        self.send(chan.write(data, ioid=ioid, notify=True))
        return self.wait_for(lambda c: isinstance(c, ca.WriteNotifyResponse) and c.ioid == ioid)

    def subscribe(self, chan: Any) -> Any:
        """EVENT_ADD; the first EventAddResponse or an ErrorResponse."""
        subid = self._next_id()
        self.send(chan.subscribe(subscriptionid=subid))
        return self.wait_for(lambda c: (isinstance(c, ca.EventAddResponse)
                                        and c.subscriptionid == subid)
                             or isinstance(c, ca.ErrorResponse))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawCA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
