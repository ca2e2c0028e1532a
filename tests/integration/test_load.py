"""Load: hundreds of concurrent clients and ten thousand channels on one IOC.

Clients run in worker processes (``fuzz/load_worker.py``): CA circuits come
100 to a caproto context (one circuit per priority), PVA connections one per
p4p context. While the load is on, this process times normal gets over CA and
PVA. Assertions are deliberately loose (timing targets belong in benchmarks);
the figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
from p4p.client.thread import Context as PVAContext

from fuzz.checks import rss_mb, target_config
from harness import IocProcess, base_env, ca_pv, caproto_client

WORKER = Path(__file__).resolve().parents[1] / "fuzz" / "load_worker.py"


class Worker:
    """A load_worker.py process."""

    def __init__(self, protocol: str, clients: int, conf: dict[str, str],
                 names: Sequence[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), protocol, str(clients), json.dumps(conf), *names],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=base_env())

    def ready(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"worker exited with {self.proc.poll()}"
        return json.loads(line)  # type: ignore[no-any-return]

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        result = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return result  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def established(ioc: IocProcess) -> dict[str, int]:
    conns = [c for c in psutil.Process(ioc.pid).net_connections(kind="tcp")
             if c.status == psutil.CONN_ESTABLISHED and c.laddr]
    return {"ca": sum(c.laddr.port == ioc.ca_port for c in conns),
            "pva": sum(c.laddr.port == ioc.pva_port for c in conns)}


def get_latencies(ioc: IocProcess, suffix: str, count: int = 50) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ca": [], "pva": []}
    with caproto_client(ioc) as ctx:
        pv = ca_pv(ctx, ioc.pv(suffix), timeout=30)
        for _ in range(count):
            t0 = time.perf_counter()
            pv.read(timeout=30)
            out["ca"].append(time.perf_counter() - t0)
    pva = PVAContext("pva", conf=ioc.pva_conf(), useenv=False)
    try:
        pva.get(ioc.pv(suffix), timeout=30)  # connect
        for _ in range(count):
            t0 = time.perf_counter()
            pva.get(ioc.pv(suffix), timeout=30)
            out["pva"].append(time.perf_counter() - t0)
    finally:
        pva.close()
    return out


def describe(latencies: dict[str, list[float]]) -> str:
    return ", ".join(f"{k} get median {statistics.median(v) * 1e3:.1f} ms max "
                     f"{max(v) * 1e3:.1f} ms" for k, v in latencies.items())


def test_200_ca_and_200_pva_clients_each_monitoring(ioc_factory: Any, tmp_path: Path,
                                                    workers: list[Worker]) -> None:
    ioc = ioc_factory(target_config(tmp_path, tick=0.1), name="load")
    quiet = get_latencies(ioc, "RW")
    start_rss = rss_mb(ioc.pid)
    names = [ioc.pv("TICKS"), ioc.pv("RW")]
    started = time.monotonic()
    workers += [Worker("ca", 200, ioc.client_env(), names),
                Worker("pva", 200, ioc.pva_conf(), names)]
    ca_ready, pva_ready = (w.ready() for w in workers)
    assert ca_ready["ready"] == 200, ca_ready
    assert pva_ready["ready"] == 200, pva_ready
    conns = established(ioc)
    assert conns["ca"] >= 200 and conns["pva"] >= 200, conns
    loaded = get_latencies(ioc, "RW")
    rss = rss_mb(ioc.pid)
    updates = [w.finish()["updates"] for w in workers]
    print(f"\n200 CA + 200 PVA clients ready in {time.monotonic() - started:.1f} s "
          f"(CA {ca_ready['seconds']} s, PVA {pva_ready['seconds']} s); connections {conns}; "
          f"RSS {start_rss:.0f} -> {rss:.0f} MiB\n  quiet: {describe(quiet)}\n"
          f"  loaded: {describe(loaded)}\n  updates per client: CA min "
          f"{min(updates[0])}, PVA min {min(updates[1])}")
    for counts in updates:
        assert min(counts) >= 2, "every client got its monitor updates"
    assert max(loaded["ca"] + loaded["pva"]) < 2.0
    assert rss < start_rss + 300
    assert ioc.alive()


def test_10000_channel_connections(ioc_factory: Any, tmp_path: Path,
                                   workers: list[Worker]) -> None:
    ioc = ioc_factory(target_config(tmp_path, tick=0.1, extra=2000), name="channels",
                      ready_timeout=60)
    names = [ioc.pv("TICKS")] + [ioc.pv(f"X{i:05d}") for i in range(2000)]
    started = time.monotonic()
    workers += [Worker("ca", 5, ioc.client_env(), names),
                Worker("pva", 5, ioc.pva_conf(), names)]
    ca_ready, pva_ready = (w.ready() for w in workers)
    assert ca_ready["channels"] == 5 * len(names), ca_ready
    assert pva_ready["channels"] == 5 * len(names), pva_ready
    loaded = get_latencies(ioc, "X01999")
    rss = rss_mb(ioc.pid)
    results = [w.finish()["updates"] for w in workers]
    print(f"\n{ca_ready['channels']} CA + {pva_ready['channels']} PVA channels connected in "
          f"{time.monotonic() - started:.1f} s (CA {ca_ready['seconds']} s, PVA "
          f"{pva_ready['seconds']} s); RSS {rss:.0f} MiB; {describe(loaded)}")
    for updates in results:
        assert min(updates) >= 2
    assert max(loaded["ca"] + loaded["pva"]) < 2.0
