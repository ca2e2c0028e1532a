"""Property tests: malformed PVA messages and search datagrams break nothing for others.

TCP batches start with part of a real p4p client's opening (connection
validation, searches, channel creation, get, put, monitor; recorded once per
module) and continue with mutated copies of those messages, random headers
and random bytes. UDP batches are search requests, valid or mutated, that
always ask for the reply to go back to the sender.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import IocProcess

from .checks import Health, record_pva_opening
from .conftest import FUZZ, sample
from .corpus import drain, mutate, pva_header, random_pva_datagram, send_datagrams


@pytest.fixture(scope="module")
def opening(fuzz_ioc: IocProcess) -> list[bytes]:
    messages = record_pva_opening(fuzz_ioc)
    assert len(messages) >= 5, messages
    return messages


def send_session(ioc: IocProcess, chunks: Sequence[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", ioc.pva_port), timeout=5) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the IOC dropped us: fine
        drain(sock, 0.01)


raw_messages = st.builds(
    lambda cmd, flags, version, payload, lie: pva_header(
        cmd, len(payload) if lie is None else lie, flags, version) + payload,
    st.integers(0, 255), st.integers(0, 255), st.sampled_from([0, 1, 2, 2, 255]),
    st.binary(max_size=300), st.one_of(st.none(), st.none(), st.integers(0, 0xFFFFFFFF)))


@FUZZ
@given(keep=st.integers(0, 40), seeds=st.lists(st.integers(0, 2**32 - 1), max_size=25),
       extra=st.lists(raw_messages, max_size=5))
def test_malformed_pva_messages(fuzz_ioc: IocProcess, health: Health, opening: list[bytes],
                                rss_budget: dict[str, float], keep: int, seeds: list[int],
                                extra: list[bytes]) -> None:
    chunks = list(opening[:keep])
    for seed in seeds:
        rng = random.Random(seed)
        chunks.append(mutate(rng, rng.choice(opening)))
    chunks += extra
    send_session(fuzz_ioc, chunks)
    health.check()
    sample(rss_budget, fuzz_ioc)


@FUZZ
@given(data=st.binary(min_size=1, max_size=2000))
def test_random_bytes_on_a_new_pva_connection(fuzz_ioc: IocProcess, health: Health,
                                              data: bytes) -> None:
    send_session(fuzz_ioc, [data])
    health.check()


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 60))
def test_malformed_pva_search_datagrams(fuzz_ioc: IocProcess, health: Health,
                                        names: list[str], rss_budget: dict[str, float],
                                        seed: int, count: int) -> None:
    rng = random.Random(seed)
    send_datagrams(fuzz_ioc.pva_bport, lambda port: random_pva_datagram(rng, names, port),
                   count)
    health.check()
    sample(rss_budget, fuzz_ioc)
