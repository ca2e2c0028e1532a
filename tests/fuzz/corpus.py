"""Malformed, truncated, oversized and random CA and PVA messages, and how to send them.

Shared by the hypothesis tests (``test_fuzz_*.py``) and the bounded fuzz
script (``benchmarks/fuzz.py``). Everything goes to 127.0.0.1 only, and no
message can make the IOC answer elsewhere: PVA search datagrams always carry
the "reply to sender" address and never an origin tag.

A *session* is one TCP connection: an optional valid prefix (CA: version,
host, client name, channels created; PVA: a real client's recorded opening),
then fuzzed messages. :func:`ca_session` / :func:`pva_session` return how many
messages were sent.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import caproto as ca

# -- Channel Access ------------------------------------------------------------------
CA_CLIENT_COMMANDS = (0, 1, 2, 3, 4, 6, 8, 9, 10, 12, 15, 18, 19, 20, 21, 23, 24)
CA_HEADER = struct.Struct(">HHHHII")
CA_EXTENDED = struct.Struct(">HHHHIIII")


def pad8(payload: bytes) -> bytes:
    return payload + b"\0" * (-len(payload) % 8)


@dataclass(frozen=True)
class CAMessage:
    """One CA message; ``declared`` may lie about the payload size."""

    command: int
    data_type: int = 0
    data_count: int = 0
    p1: int = 0
    p2: int = 0
    payload: bytes = b""
    declared: int | None = None
    extended: bool = False
    truncate: int | None = None

    def encode(self) -> bytes:
        size = len(self.payload) if self.declared is None else self.declared
        if self.extended or size > 0xFFFE or self.data_count > 0xFFFF:
            raw = CA_EXTENDED.pack(self.command & 0xFFFF, 0xFFFF, self.data_type & 0xFFFF, 0,
                                   self.p1 & 0xFFFFFFFF, self.p2 & 0xFFFFFFFF,
                                   size & 0xFFFFFFFF, self.data_count & 0xFFFFFFFF)
        else:
            raw = CA_HEADER.pack(self.command & 0xFFFF, size, self.data_type & 0xFFFF,
                                 self.data_count & 0xFFFF, self.p1 & 0xFFFFFFFF,
                                 self.p2 & 0xFFFFFFFF)
        raw += self.payload
        return raw if self.truncate is None else raw[:self.truncate]


def ca_hello(host: str = "fuzz", user: str = "fuzz") -> bytes:
    """Version, host name and client name, as a client opens a circuit."""
    return b"".join(bytes(m) for m in (ca.VersionRequest(priority=0, version=13),
                                       ca.HostNameRequest(host), ca.ClientNameRequest(user)))


def ca_create(name: str, cid: int) -> bytes:
    return bytes(ca.CreateChanRequest(name, cid, 13))


def random_ca_message(rng: random.Random, sids: Sequence[int] = (),
                      names: Sequence[str] = (), max_payload: int = 1 << 20) -> CAMessage:
    """A random CA client message: mostly plausible commands with wrong fields."""
    roll = rng.random()
    command = (rng.choice(CA_CLIENT_COMMANDS) if roll < 0.85 else rng.randrange(0, 0x10000))
    data_type = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 14, 20, 34, 38, rng.randrange(0, 0x10000)])
    data_count = rng.choice([0, 1, 2, 16, 1024, 0xFFFF, rng.randrange(0, 0x10000)])
    p1 = rng.choice([*sids, 0, 1, rng.randrange(0, 1 << 32)]) if sids else rng.randrange(0, 99)
    p2 = rng.choice([0, 1, 6, rng.randrange(0, 1 << 32)])
    kind = rng.random()
    if command in (18, 6) and names and kind < 0.5:
        name = rng.choice([*names, "", "x" * rng.randrange(1, 3000), "\xff\xfe",
                           rng.choice(names) + ".VAL", rng.choice(names) + "$",
                           rng.choice(names) + ".{\"arr\":{\"s\":1}}"])
        payload = pad8(name.encode("latin-1", "replace") + b"\0")
    elif kind < 0.7:
        payload = pad8(rng.randbytes(rng.choice([0, 8, 16, 40, 64, 1024])))
    else:
        payload = rng.randbytes(rng.randrange(0, 200))
    declared = None
    lie = rng.random()
    if lie < 0.1:
        declared = rng.choice([len(payload) + 8, max_payload + 8, 0xFFFE, 1 << 24, 0xFFFFFFFF])
    elif lie < 0.15:
        declared = max(0, len(payload) - 8)
    truncate = rng.randrange(0, 16 + len(payload)) if rng.random() < 0.05 else None
    return CAMessage(command, data_type, data_count, p1, p2, payload, declared,
                     extended=rng.random() < 0.05, truncate=truncate)


def random_ca_datagram(rng: random.Random, names: Sequence[str] = ()) -> bytes:
    """A CA search datagram (often valid, often not) or random bytes."""
    roll = rng.random()
    if roll < 0.1:
        return rng.randbytes(rng.randrange(1, 1500))
    parts = []
    if rng.random() < 0.8:
        parts.append(CAMessage(0, rng.choice([0, 1]), 13, rng.randrange(1 << 32), 0).encode())
    for _ in range(rng.randrange(0, 20)):
        name = rng.choice([*names, "", "NOPE", "x" * rng.randrange(1, 200)]) if names else "X"
        payload = pad8(name.encode() + b"\0")
        message = CAMessage(rng.choice([6, 6, 6, 0, 13, 24, rng.randrange(0, 64)]),
                            rng.choice([5, 10, rng.randrange(1 << 16)]),
                            rng.choice([13, 11, 0, rng.randrange(1 << 16)]),
                            rng.randrange(1 << 32), rng.randrange(1 << 32), payload,
                            declared=rng.choice([None] * 8 + [0, 8, 0xFFFF, 4000]))
        parts.append(message.encode())
    data = b"".join(parts)
    if rng.random() < 0.1:
        data = data[:rng.randrange(0, len(data) + 1)]
    return data[:8000]


# -- PVAccess ----------------------------------------------------------------------
PVA_SEARCH = 0x03
PVA_ORIGIN_TAG = 0x16


def pva_header(command: int, size: int, flags: int = 0x00, version: int = 2) -> bytes:
    order = ">" if flags & 0x80 else "<"
    return bytes([0xCA, version & 0xFF, flags & 0xFF, command & 0xFF]) + struct.pack(
        order + "I", size & 0xFFFFFFFF)


def pva_string(text: bytes) -> bytes:
    if len(text) < 254:
        return bytes([len(text)]) + text
    return b"\xfe" + struct.pack("<I", len(text)) + text


def pva_search(names: Sequence[str], port: int, seq: int = 1) -> bytes:
    """A valid little-endian PVA search request asking for a reply to the sender."""
    body = struct.pack("<IB3x", seq, 0x81) + bytes(16) + struct.pack("<H", port)
    body += b"\x01" + pva_string(b"tcp") + struct.pack("<H", len(names))
    for i, name in enumerate(names):
        body += struct.pack("<I", i + 1) + pva_string(name.encode())
    return pva_header(PVA_SEARCH, len(body)) + body


def make_pva_datagram_safe(data: bytes, port: int) -> bytes:
    """Force "reply to sender" (address 0, our port) and never an origin tag."""
    out = bytearray(data)
    if len(out) >= 4 and out[0] == 0xCA and out[3] == PVA_ORIGIN_TAG:
        out[3] = PVA_SEARCH
    if len(out) >= 34 and out[0] == 0xCA:
        out[16:32] = bytes(16)
        order = ">" if out[2] & 0x80 else "<"
        struct.pack_into(order + "H", out, 32, port)
    return bytes(out)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Bit flips, byte edits, truncation, duplication, size lies and inserts."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(7)
        if not out:
            out += rng.randbytes(rng.randrange(1, 64))
            continue
        pos = rng.randrange(len(out))
        if op == 0:
            out[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, 0xFE, rng.randrange(256)])
        elif op == 2:
            del out[pos:]
        elif op == 3:
            out[pos:pos] = rng.randbytes(rng.randrange(1, 64))
        elif op == 4 and len(out) >= 8:
            size = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)])
            struct.pack_into("<I", out, 4, size)  # a PVA header's size field
        elif op == 5:
            out += out[pos:pos + rng.randrange(1, 256)]
        else:
            out[pos:pos + 4] = struct.pack("<I", rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, 254]))
    return bytes(out)


def split_pva(stream: bytes) -> list[bytes]:
    """Split a recorded PVA byte stream into whole messages (header + payload)."""
    out, offset = [], 0
    while len(stream) - offset >= 8:
        flags = stream[offset + 2]
        size = 0 if flags & 0x01 else struct.unpack_from(">I" if flags & 0x80 else "<I",
                                                         stream, offset + 4)[0]
        end = offset + 8 + size
        if end > len(stream):
            break
        out.append(stream[offset:end])
        offset = end
    return out


def random_pva_message(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """A mutated recorded message, a random-header message or random bytes."""
    roll = rng.random()
    if roll < 0.6 and seeds:
        return mutate(rng, rng.choice(seeds))
    if roll < 0.9:
        flags = rng.choice([0x00, 0x80, 0x01, 0x81, 0x10, 0x20, 0x30, rng.randrange(256)])
        size = rng.randrange(0, 300)
        payload = rng.randbytes(size)
        declared = size if rng.random() < 0.8 else rng.choice([0, 0xFFFFFFFF, size * 2, 1 << 30])
        return pva_header(rng.randrange(0, 32), declared, flags,
                          rng.choice([0, 1, 2, 2, 2, 255])) + payload
    return rng.randbytes(rng.randrange(1, 512))


def random_pva_datagram(rng: random.Random, names: Sequence[str], port: int) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        data = rng.randbytes(rng.randrange(1, 1500))
        if data[:1] == b"\xca":
            data = b"\x00" + data[1:]
        return data
    picked = [rng.choice([*names, "", "NOPE", "x" * rng.randrange(1, 300)])
              for _ in range(rng.randrange(0, 8))]
    data = pva_search(picked, port, rng.randrange(1 << 32))
    if roll < 0.8:
        data = mutate(rng, data)
    return make_pva_datagram_safe(data, port)


# -- senders -------------------------------------------------------------------------
def drain(sock: socket.socket, seconds: float) -> bool:
    """Read and discard replies for ``seconds``; False if the server closed."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return False
        except TimeoutError:
            return True
        except OSError:
            return False


def send_stream(port: int, chunks: Sequence[bytes], linger: float = 0.02) -> bool:
    """Connect to 127.0.0.1:port, send ``chunks``, read replies briefly, close.

    Returns False if the server closed or reset the connection early.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            return False
        ok = drain(sock, linger)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return ok


def ca_session(port: int, rng: random.Random, names: Sequence[str], count: int,
               max_payload: int = 1 << 20) -> int:
    """One CA circuit: valid hello, up to 3 channels created, then ``count`` random
    messages (which may name those channels' ids). Returns the messages sent."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(ca_hello(user=rng.choice(["fuzz", "alice", ""])))
            sent += 3
            wanted = rng.sample(list(names), min(rng.randrange(0, 4), len(names)))
            sids: list[int] = []
            if wanted:
                sock.sendall(b"".join(ca_create(n, cid) for cid, n in enumerate(wanted, 1)))
                sent += len(wanted)
                sids = created_sids(sock, port, len(wanted))
            for _ in range(count):
                sock.sendall(random_ca_message(rng, sids, names, max_payload).encode())
                sent += 1
        except OSError:
            return sent  # the server closed the circuit (as it should, often)
        drain(sock, 0.01)
    return sent


def created_sids(sock: socket.socket, port: int, n: int) -> list[int]:
    """The sids of the next ``n`` CreateChanResponses on a raw CA circuit."""
    circuit = ca.VirtualCircuit(ca.CLIENT, ("127.0.0.1", port), 0)
    sids: list[int] = []
    deadline = time.monotonic() + 2
    while len(sids) < n and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        with contextlib.suppress(Exception):
            commands, _ = circuit.recv(data)
            sids.extend(c.sid for c in commands if isinstance(c, ca.CreateChanResponse))
    return sids


def pva_session(port: int, rng: random.Random, opening: Sequence[bytes],
                seeds: Sequence[bytes], count: int) -> int:
    """One PVA connection: part of a real client's opening, then ``count`` fuzzed messages."""
    keep = rng.randrange(0, len(opening) + 1)
    chunks = list(opening[:keep])
    chunks += [random_pva_message(rng, seeds) for _ in range(count)]
    send_stream(port, chunks)
    return len(chunks)


def send_datagrams(port: int, make: Callable[[int], bytes], n: int) -> int:
    """Send ``n`` datagrams ``make(our_port)`` to 127.0.0.1:port; replies come back to
    our socket (its port is what PVA searches name) and are read and dropped."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        ours = sock.getsockname()[1]
        sock.setblocking(False)
        for _ in range(n):
            with contextlib.suppress(OSError):
                sock.sendto(make(ours), ("127.0.0.1", port))
            with contextlib.suppress(OSError):
                while sock.recv(65536):
                    pass
        return n
