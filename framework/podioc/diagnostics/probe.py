"""``podioc probe``: is the IOC with this prefix alive on this host?

Ready means its HEARTBEAT PV can be read; alive means the heartbeat advances
(the event loop is running). The probe searches where the IOC listens,
derived from the same EPICS_* server settings the IOC reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..runtime.settings import Settings

HEARTBEAT = "HEARTBEAT"


class ProbeFailed(Exception):
    """The IOC could not be reached or is not advancing."""


@dataclass(frozen=True)
class ProbeResult:
    """What the probe saw."""

    protocol: str
    first: int
    last: int
    elapsed: float


def search_addresses(settings: Settings, protocol: str) -> list[str]:
    """Addresses a local client should search so every interface the IOC serves is hit."""
    intf = settings.ca_intf_addrs if protocol == "ca" else settings.pva_intf_addrs
    out = []
    for addr in intf or ("0.0.0.0",):
        out.append("127.255.255.255" if addr in ("0.0.0.0", "") else addr)
    return out


@contextmanager
def _ca_reader(settings: Settings, timeout: float) -> Iterator[Callable[[str], int]]:
    from .careader import CaReader

    port = settings.ca_server_port
    addresses = [(host, port) for host in search_addresses(settings, "ca")]
    readers: dict[str, CaReader] = {}

    def get(name: str) -> int:
        # one search and one circuit per probe, kept for its repeated reads
        if name not in readers:
            readers[name] = CaReader(name, addresses, timeout)
        return int(readers[name].read()[0])

    try:
        yield get
    finally:
        for reader in readers.values():
            reader.close()


@contextmanager
def _pva_reader(settings: Settings, timeout: float) -> Iterator[Callable[[str], int]]:
    from p4p.client.thread import Context

    ctx = Context("pva", useenv=False, conf={
        "EPICS_PVA_ADDR_LIST": " ".join(search_addresses(settings, "pva")),
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_BROADCAST_PORT": str(settings.pva_broadcast_port),
    })

    def get(name: str) -> int:
        return int(ctx.get(name, timeout=timeout))

    try:
        yield get
    finally:
        ctx.close()


def probe(prefix: str, settings: Settings, protocol: str = "ca", *, ready_only: bool = False,
          timeout: float = 5.0) -> ProbeResult:
    """Read ``prefix``HEARTBEAT; unless ``ready_only``, wait for it to advance."""
    start = time.monotonic()
    name = prefix + HEARTBEAT
    opened = (_ca_reader if protocol == "ca" else _pva_reader)(settings, max(0.5, timeout))
    with opened as reader:
        return _watch(reader, name, protocol, start, timeout, ready_only)


def _watch(reader: Callable[[str], int], name: str, protocol: str, start: float,
           timeout: float, ready_only: bool) -> ProbeResult:
    deadline = start + timeout
    try:
        first = reader(name)
    except Exception as exc:
        raise ProbeFailed(f"{name} not readable over {protocol.upper()}: "
                          f"{type(exc).__name__}: {exc}") from None
    last = first
    while not ready_only and last == first:
        if time.monotonic() > deadline:
            raise ProbeFailed(f"{name} stuck at {first} for {timeout:.1f} s over "
                              f"{protocol.upper()}: the IOC's event loop is not running")
        time.sleep(0.1)
        try:
            last = reader(name)
        except Exception as exc:
            raise ProbeFailed(f"{name} stopped answering over {protocol.upper()}: "
                              f"{type(exc).__name__}: {exc}") from None
    return ProbeResult(protocol, first, last, time.monotonic() - start)
