"""Hostile clients, part 2: oversized PVA messages and greedy clients (raw sockets).

The dead-client tests are in tests/netns/test_netns_dead_clients.py and the
descriptor-exhaustion test in test_descriptors.py. Figures are printed (``-s``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import caproto as ca
import pytest
from p4p.client.thread import Context as PVAContext

from harness import IocProcess, poll_until
from harness.wakeups import wait_still

from .checks import Health, rss_mb
from .corpus import ca_create, ca_hello, pva_header
from .test_limits import ca_circuit, closed_by_server, raw_reply, start

#: PVA application command GET (any command will do: pvxs buffers before parsing).
_PVA_GET = 0x0A


#: The flood's pace, bytes/s: a 2.5 Gb/s link. Unpaced, loopback runs at ~1 GB/s and
#: a busy CI machine can leave the guard's thread unscheduled for the whole 300 MiB.
FLOOD_RATE = 300 << 20
#: Wake-ups per second of an IOC that sleeps (see tests/integration/test_idle.py).
IDLE_WAKEUPS = 7.0


def flood_one_message(port: int, limit_bytes: int,
                      connected: Callable[[], object] | None = None) -> tuple[int, bool]:
    """Declare a 0x7FFFFFF0-byte PVA message and stream up to ``limit_bytes`` of it at
    :data:`FLOOD_RATE` (after ``connected()`` returns, if given); (bytes sent, closed
    by the server)."""
    sent = 0
    chunk = bytes(1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if connected is not None:
            connected()
        start = time.monotonic()
        sock.sendall(pva_header(_PVA_GET, 0x7FFFFFF0))
        try:
            while sent < limit_bytes:
                sent += sock.send(chunk)
                ahead = sent / FLOOD_RATE - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)  # pacing the sender, not waiting for the IOC
        except OSError:
            return sent, True
        return sent, closed_by_server(sock, timeout=5.0)


def test_oversized_pva_message_is_bounded(ioc_factory: Any, tmp_path: Path) -> None:
    """Two connections each start a 2 GiB message: each is closed after the bound
    (16 MiB for this IOC) plus what it sends in one check period, and the IOC's
    memory returns close to where it was."""
    ioc = start(ioc_factory, tmp_path)
    with Health(ioc) as health:
        health.check()
        before = rss_mb(ioc.pid)
        results = [flood_one_message(ioc.pva_port, 300 << 20) for _ in range(2)]
        peak = rss_mb(ioc.pid)
        for sent, closed in results:
            assert closed, f"a connection that sent {sent >> 20} MiB of one message stays open"
            assert sent < 300 << 20
        ioc.wait_for_log(r"closing the PVA connection from 127\.0\.0\.1:\d+: it sent \d+ bytes "
                         r"the server has not processed .* the limit is 16777216 bytes "
                         r"\(PODIOC_PVA_MAX_BUFFER_BYTES\)")
        after = poll_until(lambda: (r if (r := rss_mb(ioc.pid)) < before + 32 else None),
                           timeout=10)
        print(f"\nRSS {before:.0f} MiB before, {peak:.0f} after flooding, {after:.0f} MiB "
              f"after close; sent {[r[0] >> 20 for r in results]} MiB before the close")
        health.check()


def test_flood_on_a_sleeping_ioc_is_bounded(ioc_factory: Any, tmp_path: Path) -> None:
    """The flood starts on an idle connection once the IOC sleeps (the PVA guard's
    readings every 250 ms): it is still closed after the bound plus about one
    reading's worth."""
    ioc = start(ioc_factory, tmp_path, tick=3600.0)  # no ticks: the IOC can sleep
    sent, closed = flood_one_message(ioc.pva_port, 300 << 20,
                                     lambda: wait_still(ioc.pid, IDLE_WAKEUPS))
    assert closed and sent < 300 << 20, f"{sent >> 20} MiB sent, closed: {closed}"
    print(f"\nflood from still: closed after {sent >> 20} MiB")
    with Health(ioc) as health:
        health.check()


# -- a process-wide channel budget ------------------------------------------------------
def create_many(sock: socket.socket, port: int, name: str, count: int, first_cid: int = 1,
                timeout: float = 20) -> tuple[list[int], list[Any]]:
    """Create ``count`` channels of ``name`` on a raw circuit; (sids, ErrorResponses)
    once every one is answered, created or refused."""
    circuit = ca.VirtualCircuit(ca.CLIENT, ("127.0.0.1", port), 0)
    sock.sendall(b"".join(ca_create(name, cid)
                          for cid in range(first_cid, first_cid + count)))
    sids: list[int] = []
    errors: list[Any] = []
    failed = 0
    deadline = time.monotonic() + timeout
    while len(sids) + failed < count:
        assert time.monotonic() < deadline, f"{len(sids)} created, {failed} refused"
        sock.settimeout(deadline - time.monotonic())
        commands, _ = circuit.recv(sock.recv(1 << 20))
        for command in commands:
            if isinstance(command, ca.CreateChanResponse):
                sids.append(int(command.sid))
            elif isinstance(command, ca.CreateChFailResponse):
                failed += 1
            elif isinstance(command, ca.ErrorResponse):
                errors.append(command)
    return sids, errors


def read_value(sock: socket.socket, port: int, sid: int) -> float:
    """One READ_NOTIFY of a DBR_DOUBLE on a raw circuit."""
    request = bytes(ca.ReadNotifyRequest(data_type=6, data_count=1, sid=sid, ioid=77))
    return float(raw_reply(sock, port, request, ca.ReadNotifyResponse).data[0])


def pva_get(ioc: IocProcess, name: str, timeout: float = 3.0) -> Any:
    ctx = PVAContext("pva", conf=ioc.pva_conf(), useenv=False)
    try:
        return ctx.get(name, timeout=timeout)
    finally:
        ctx.close()


def test_channel_budget_is_process_wide(ioc_factory: Any, tmp_path: Path) -> None:
    """With PODIOC_MAX_CHANNELS=1000, two greedy circuits get 1000 channels between them;
    the rest are refused with ECA_ALLOCMEM (the circuits stay up, their channels work),
    PVA is refused too, and channels can be made again once the greedy client leaves."""
    ioc = start(ioc_factory, tmp_path, {"PODIOC_MAX_CHANNELS": "1000"})
    with Health(ioc) as health, ca_circuit(ioc) as first, ca_circuit(ioc) as second:
        health.check()
        made, errors = create_many(first, ioc.ca_port, ioc.pv("RW"), 600)
        assert len(made) == 600 and not errors
        more, errors = create_many(second, ioc.ca_port, ioc.pv("RW"), 600)
        assert 380 <= len(more) < 400, "the budget counts every client's channels"
        assert len(errors) == 600 - len(more)
        assert {e.status.name for e in errors} == {"ECA_ALLOCMEM"}
        assert "PODIOC_MAX_CHANNELS=1000" in bytes(errors[0].error_message).decode()
        assert read_value(second, ioc.ca_port, more[0]) == read_value(first, ioc.ca_port,
                                                                      made[0])
        with pytest.raises(Exception):  # noqa: B017 - p4p raises RemoteError or TimeoutError
            pva_get(ioc, ioc.pv("RO"))
        health.check()  # channels open before the budget ran out keep working
        ioc.wait_for_log(r"CA channel \S+ refused to 127\.0\.0\.1:\d+: channel budget "
                         r"exhausted: \d+ channels open over all clients "
                         r"\(PODIOC_MAX_CHANNELS=1000\)")
        first.close()  # its 600 channels go back to the budget
        poll_until(lambda: pva_get(ioc, ioc.pv("RO")) is not None, timeout=10)
        again, errors = create_many(second, ioc.ca_port, ioc.pv("RW"), 100, first_cid=10_000)
        assert len(again) == 100 and not errors
        health.check()


def test_many_clients_cannot_exceed_the_budget(ioc_factory: Any, tmp_path: Path) -> None:
    """Eight clients asking for 10,000 channels each get 40,000 between them; the IOC's
    memory stays bounded and it keeps serving (figures printed)."""
    ioc = start(ioc_factory, tmp_path, {"PODIOC_MAX_CHANNELS": "40000"})
    before = rss_mb(ioc.pid)
    socks: list[socket.socket] = []
    total = 0
    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", ioc.ca_port), timeout=20)
            sock.sendall(ca_hello())
            socks.append(sock)
            made, _ = create_many(sock, ioc.ca_port, ioc.pv("RW"), 10_000, timeout=60)
            total += len(made)
        after = rss_mb(ioc.pid)
        print(f"\n8 x 10000 channels asked, {total} made; RSS {before:.0f} -> {after:.0f} MiB")
        assert 39_000 <= total <= 40_000
        assert read_value(socks[0], ioc.ca_port, 1) == 0.0  # the first client's first channel
    finally:
        for sock in socks:
            sock.close()
