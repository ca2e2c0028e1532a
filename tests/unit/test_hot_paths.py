"""Regression guard: posting a large array copies it at most once per protocol.

One model PV holds a 1,000,000-element float64 waveform (8 MB) and is served
by podioc's CA channel, with one CA monitor on a real (Unix socketpair)
connection read to the end, and by its PVA SharedPV. A post is measured with
tracemalloc (allocations, not time):

- the model keeps one fresh read-only copy of what IOC code set (by design);
- CA converts it once to big-endian wire order and writes that buffer as is
  (caproto alone copies it three more times: ``astype`` when building the
  message, ``b"".join`` before writing, the transport's buffer for what the
  socket did not take at once);
- PVA: podioc's binding adds no Python-side copy; p4p takes the array into
  its C++ storage, and its server sends from there (C++, not traced, and no
  PVA client runs here: a unit test has no network). What is checked for
  PVA is that the SharedPV, which every PVA monitor and get is served from,
  holds exactly the posted array and timestamp, measured alone
  (:func:`test_a_large_array_post_adds_no_python_copy_for_pva`) and together
  with CA.
"""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
from typing import Any

import caproto as ca
import numpy as np

from harness.inproc import open_circuit
from podioc import IOC, pv
from podioc.protocols.pva.channels import PVABinding

N = 1_000_000
NBYTES = N * 8


class Big(IOC):
    wave = pv.waveform(N, dtype="float64", name="WAVE")


_BUFFER = bytearray(1 << 20)  # the test client's, outside the measurement


async def _drain(sock: socket.socket, want: int, deadline: float) -> int:
    """Read (into one reused buffer) until ``want`` bytes have arrived."""
    loop = asyncio.get_running_loop()
    buffer = _BUFFER
    got = 0
    while got < want and loop.time() < deadline:
        try:
            got += await asyncio.wait_for(loop.sock_recv_into(sock, buffer),
                                          max(0.01, deadline - loop.time()))
        except TimeoutError:
            break
    return got


def _served_by_pva(binding: PVABinding, live: Any, value: Any) -> bool:
    """True when the SharedPV serves exactly ``value`` with the model's timestamp."""
    current = binding.shared.current()
    stamp = current["timeStamp.secondsPastEpoch"] * 10**9 + current["timeStamp.nanoseconds"]
    return bool(np.array_equal(current["value"], value)) and stamp == live.timestamp_ns


async def _post_and_measure(ioc: Big, client_end: socket.socket,
                            binding: PVABinding, seed: int) -> tuple[int, int, bool]:
    loop = asyncio.get_running_loop()
    value = np.random.default_rng(seed).random(N)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        ioc.wave.set(value)
        got = await _drain(client_end, NBYTES, loop.time() + 30)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return got, peak, _served_by_pva(binding, ioc.wave, value)


async def _scenario() -> list[tuple[int, int, bool]]:
    ioc = Big("HOT:")
    ioc.wave.set(np.zeros(N))
    binding = PVABinding(ioc.wave)
    opened = await open_circuit(ioc, ["HOT:WAVE"])
    loop = asyncio.get_running_loop()
    # the first value (8 MB) is written while the circuit answers: read it meanwhile
    answering = asyncio.ensure_future(
        opened.send(ca.EventAddRequest(6, 0, opened.sid(1), 7, 0, 0, 0, 1)))
    first = await _drain(opened.client, 32 + NBYTES, loop.time() + 10)
    await answering
    assert first >= NBYTES, f"first value: {first} bytes"
    try:
        return [await _post_and_measure(ioc, opened.client, binding, seed) for seed in (1, 2)]
    finally:
        opened.close()


def test_a_large_array_post_is_copied_once_per_protocol() -> None:
    for got, peak, pva_has_it in asyncio.run(_scenario()):
        assert got >= NBYTES, "the CA monitor did not receive the update"
        assert pva_has_it, "the PVA SharedPV does not serve the posted array"
        # model copy + CA wire conversion, plus bounded slack (write chunks, messages)
        assert peak < 2 * NBYTES + NBYTES // 4, (
            f"posting 8 MB allocated {peak / NBYTES:.2f} x 8 MB (limit 2.25)")


def test_a_large_array_post_adds_no_python_copy_for_pva() -> None:
    async def post_twice() -> list[tuple[int, bool]]:
        ioc = Big("HOT:")
        binding = PVABinding(ioc.wave)  # PVA only: every traced byte is the model's or p4p's
        results = []
        for seed in (1, 2):
            value = np.random.default_rng(seed).random(N)
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                ioc.wave.set(value)
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            results.append((peak, _served_by_pva(binding, ioc.wave, value)))
        return results

    for peak, pva_has_it in asyncio.run(post_twice()):
        assert pva_has_it, "the PVA SharedPV does not serve the posted array"
        # the model's copy only, plus bounded slack (the update Value, its fields)
        assert peak < NBYTES + NBYTES // 4, (
            f"posting 8 MB over PVA allocated {peak / NBYTES:.2f} x 8 MB (limit 1.25)")
