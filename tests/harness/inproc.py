"""A podioc CA circuit in this process, fed over a Unix socketpair.

For deterministic tests of the CA server's hot paths (allocations, conversions,
messages per request): the real ServerContext and Circuit classes, a real
socket, no network and no timing.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import Any

import caproto as ca
from caproto.asyncio.utils import _TransportWrapper

from podioc import IOC
from podioc.protocols.ca import ServerContext as Context
from podioc.protocols.ca import make_pvdb
from podioc.protocols.ca.circuit import Circuit
from podioc.protocols.ca.sansio import FastSansIO


class _Driven(Circuit):
    """A circuit whose batches are all answered by :meth:`recv`, which the test
    calls (nothing is answered as it arrives: see ``protocols/ca/inline.py``)."""

    inline_answers = False


@dataclass
class InProcessCircuit:
    """One connected circuit: ``client`` is the test's (non-blocking) end."""

    ctx: Any
    circuit: Any
    client: socket.socket
    writer: asyncio.StreamWriter
    context_loop: asyncio.Task[Any]

    async def send(self, *commands: Any) -> None:
        """Send ``commands`` in one write and let the circuit answer them."""
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.client, b"".join(bytes(c) for c in commands))
        await self.circuit.recv()

    async def replies(self, commands: tuple[int, ...], want: int
                      ) -> list[tuple[int, int, int, bytes]]:
        """(command, parameter 1, parameter 2, payload) of the next ``want``
        messages whose command id is one of ``commands`` (others are skipped);
        fewer if they do not come within 10 s."""
        loop = asyncio.get_running_loop()
        buffer, out = b"", list[tuple[int, int, int, bytes]]()
        deadline = loop.time() + 10
        while len(out) < want and loop.time() < deadline:
            try:
                buffer += await asyncio.wait_for(loop.sock_recv(self.client, 1 << 20), 1)
            except TimeoutError:
                continue
            while len(buffer) >= 16 and len(out) < want:
                cmd, size, _, _, p1, p2 = struct.unpack_from(">HHHHII", buffer)
                if len(buffer) < 16 + size:
                    break
                if cmd in commands:
                    out.append((cmd, p1, p2, buffer[16:16 + size]))
                buffer = buffer[16 + size:]
        return out

    def serve(self) -> asyncio.Task[None]:
        """The circuit's reading task, as the server's connection handler runs it."""
        async def loop() -> None:
            while True:
                await self.circuit.recv()
        return asyncio.get_running_loop().create_task(loop())

    def sid(self, cid: int) -> int:
        return int(self.circuit.circuit.channels[cid].sid)

    def close(self) -> None:
        self.context_loop.cancel()
        self.writer.close()
        self.client.close()


async def open_circuit(ioc: IOC, names: list[str], *, inline: bool = False
                       ) -> InProcessCircuit:
    """Serve ``ioc`` and connect one circuit with a channel per name (cid 1, 2, ...).

    ``inline``: a circuit as the server runs it (requests answered as they
    arrive while its reading task waits); the test then starts that task
    (:meth:`InProcessCircuit.serve`) instead of calling ``recv`` itself."""
    pvdb = make_pvdb(ioc.pvs)
    await pvdb.filling  # type: ignore[attr-defined]
    ctx = Context(pvdb, ["127.0.0.1"])
    ctx.port = 5064
    context_loop = asyncio.get_running_loop().create_task(ctx.subscription_queue_loop())
    server_end, client_end = socket.socketpair()
    client_end.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=server_end)
    transport = _TransportWrapper(reader, writer)
    transport.getsockname = lambda: ("127.0.0.1", 5064)
    circuit = (Circuit if inline else _Driven)(
        FastSansIO(ca.SERVER, ("127.0.0.1", 40000), None), transport, ctx)
    await circuit.run()
    opened = InProcessCircuit(ctx, circuit, client_end, writer, context_loop)
    await opened.send(ca.VersionRequest(0, 13), ca.HostNameRequest("h"),
                      ca.ClientNameRequest("u"),
                      *(ca.CreateChanRequest(name, cid, 13)
                        for cid, name in enumerate(names, start=1)))
    return opened
