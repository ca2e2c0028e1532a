"""Start-up probes: how long until a fresh client gets a first value.

Both probes poll fast (every few ms) so that their own retry back-off does not
hide the server's start-up time: CA speaks the protocol directly with caproto's
sans-I/O layer (UDP search, TCP create, read); PVA waits until the server's TCP
port listens and then gets the PV with a fresh p4p client.

The PVA probe never opens a bare TCP connection to the server and lets each
get wait longer than the last: pvAccessCPP (the C IOC's PVA server) takes so
long over a client that connects and leaves at once that a probe doing that
every 0.2 s never gets an answer.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

POLL = 0.002


def _ca_search(name: str, port: int, deadline: float) -> tuple[str, int] | None:
    import caproto as ca

    b = ca.Broadcaster(our_role=ca.CLIENT)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(POLL)
        b.client_address = udp.getsockname()
        payload = b.send(ca.VersionRequest(0, ca.DEFAULT_PROTOCOL_VERSION),
                         ca.SearchRequest(name, 1, ca.DEFAULT_PROTOCOL_VERSION))
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                udp.sendto(payload, ("127.0.0.1", port))
            try:
                data, address = udp.recvfrom(ca.MAX_UDP_RECV)
            except (TimeoutError, ConnectionRefusedError, ConnectionResetError):
                continue
            commands = b.recv(data, address)
            b.process_commands(commands)
            for command in commands:
                if isinstance(command, ca.SearchResponse) and command.cid == 1:
                    host, tcp_port = ca.extract_address(command)
                    return ("127.0.0.1" if host in ("0.0.0.0", "255.255.255.255")
                            else host), tcp_port
        return None
    finally:
        udp.close()


def probe_ca(name: str, port: int, timeout: float) -> float | None:
    """Monotonic time at which a CA read of ``name`` on ``port`` first succeeded."""
    import caproto as ca

    deadline = time.monotonic() + timeout
    address = _ca_search(name, port, deadline)
    if address is None:
        return None
    circuit = ca.VirtualCircuit(our_role=ca.CLIENT, address=address, priority=0)
    chan = ca.ClientChannel(name, circuit)
    with socket.create_connection(address, timeout=max(0.1, deadline - time.monotonic())) as s:
        circuit.our_address = s.getsockname()

        def send(*commands: Any) -> None:
            for command in commands:
                s.sendall(b"".join(circuit.send(command)))

        send(ca.VersionRequest(priority=0, version=ca.DEFAULT_PROTOCOL_VERSION),
             chan.host_name("probe"), chan.client_name("probe"), chan.create())
        request = None
        while time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                return None
            commands, _ = circuit.recv(data)
            for command in commands:
                circuit.process_command(command)
                if (request is not None and isinstance(command, ca.ReadNotifyResponse)
                        and command.ioid == request.ioid):
                    return time.monotonic()
            if request is None and chan.states[ca.CLIENT] is ca.CONNECTED:
                request = chan.read()
                send(request)
    return None


def probe_pva(name: str, port: int, broadcast_port: int, timeout: float) -> float | None:
    """Monotonic time at which a PVA get of ``name`` first succeeded."""
    from p4p.client.thread import Context

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _listening(port):
        time.sleep(POLL)
    conf = {"EPICS_PVA_ADDR_LIST": "127.0.0.1", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_BROADCAST_PORT": str(broadcast_port),
            "EPICS_PVA_SERVER_PORT": str(port)}
    wait = 0.2
    while time.monotonic() < deadline:
        ctx = Context("pva", conf=conf, useenv=False, nt=False)
        try:
            ctx.get(name, timeout=wait)
            return time.monotonic()
        except Exception:
            continue
        finally:
            ctx.close()
            wait = min(2.0, wait * 1.5)
    return None


def _listening(port: int) -> bool:
    """Whether some socket listens on TCP ``port`` (read from the kernel's table)."""
    state_listen, hex_port = "0A", f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if fields[1].endswith(hex_port) and fields[3] == state_listen:
                    return True
    return False
