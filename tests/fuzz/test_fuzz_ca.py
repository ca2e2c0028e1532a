"""Property tests: no sequence of malformed CA messages breaks the IOC for anyone else.

Each example opens a circuit like a real client (version, host, user, three
channels created), then sends a batch of generated messages: valid commands
with wrong fields, unknown commands, lying payload sizes, extended headers,
truncations. Afterwards a normal client must still get, put and monitor over
CA and PVA, and the IOC's memory must stay bounded.
"""

from __future__ import annotations

import contextlib
import random
import socket

from hypothesis import given
from hypothesis import strategies as st

from harness import IocProcess

from .checks import Health
from .conftest import FUZZ, sample
from .corpus import (
    CA_CLIENT_COMMANDS,
    CAMessage,
    ca_create,
    ca_hello,
    created_sids,
    drain,
    pad8,
    random_ca_datagram,
    send_datagrams,
)

commands = st.one_of(st.sampled_from(CA_CLIENT_COMMANDS), st.integers(0, 0xFFFF))
data_types = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 14, 20, 34, 38]),
                       st.integers(0, 0xFFFF))
counts = st.one_of(st.sampled_from([0, 1, 2, 16, 4096, 0xFFFF]), st.integers(0, 1 << 20))
ids = st.one_of(st.integers(0, 4), st.integers(0, 0xFFFFFFFF))
payloads = st.one_of(st.binary(max_size=64).map(pad8), st.binary(max_size=300))
declared = st.one_of(st.none(), st.none(), st.integers(0, 0xFFFFFFFF),
                     st.sampled_from([0xFFFE, 0xFFFF, 1 << 16, 1 << 24]))
ca_messages = st.builds(CAMessage, command=commands, data_type=data_types, data_count=counts,
                        p1=ids, p2=ids, payload=payloads, declared=declared,
                        extended=st.booleans(),
                        truncate=st.one_of(st.none(), st.none(), st.integers(0, 40)))


def open_circuit(ioc: IocProcess, names: list[str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", ioc.ca_port), timeout=5)
    sock.sendall(ca_hello() + b"".join(ca_create(n, cid) for cid, n in
                                       enumerate(names[:3], 1)))
    created_sids(sock, ioc.ca_port, 3)
    return sock


@FUZZ
@given(batch=st.lists(ca_messages, min_size=1, max_size=25))
def test_malformed_ca_messages_on_a_circuit(fuzz_ioc: IocProcess, health: Health,
                                            names: list[str], rss_budget: dict[str, float],
                                            batch: list[CAMessage]) -> None:
    with open_circuit(fuzz_ioc, names) as sock:
        try:
            for message in batch:
                sock.sendall(message.encode())
        except OSError:
            pass  # the IOC closed the circuit: fine
        drain(sock, 0.01)
    health.check()
    sample(rss_budget, fuzz_ioc)


@FUZZ
@given(data=st.binary(min_size=1, max_size=2000))
def test_random_bytes_on_a_new_circuit(fuzz_ioc: IocProcess, health: Health,
                                       data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", fuzz_ioc.ca_port), timeout=5) as sock:
        with contextlib.suppress(OSError):  # the IOC may close at once: fine
            sock.sendall(data)
        drain(sock, 0.01)
    health.check()


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 60))
def test_malformed_search_datagrams(fuzz_ioc: IocProcess, health: Health, names: list[str],
                                    rss_budget: dict[str, float], seed: int,
                                    count: int) -> None:
    rng = random.Random(seed)
    send_datagrams(fuzz_ioc.ca_port, lambda _: random_ca_datagram(rng, names), count)
    health.check()
    sample(rss_budget, fuzz_ioc)
