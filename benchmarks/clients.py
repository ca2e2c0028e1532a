"""Benchmark clients, one per process: ``python clients.py ca|pva``.

``ca`` drives a server with pyepics (libca), ``pva`` with p4p's client. The
EPICS_* environment the runner sets points them at one server on loopback.
Commands arrive on stdin and results leave on stdout, one JSON object per
line; every loop is bounded in count and in time:

    {"cmd": "connect_all", "names": [...], "timeout": s}  connect every PV, get each once
    {"cmd": "latency", "name": n, "count": k, "max_seconds": s}  sequential gets
    {"cmd": "puts", "name": n, "count": k, "max_seconds": s}     puts with completion
    {"cmd": "subscribe", "name": n}                               monitor, wait for first value
    {"cmd": "collect", "posted": M, "base": B, "t_start": t, "t_end": t, "max_wait": s}
    {"cmd": "wave", "name": n, "count": k, "max_seconds": s}     large array gets
    {"cmd": "quit"}
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import numpy as np
from wire import emit, parse_command


def percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples) * 1e6
    return {"p50_us": float(np.percentile(arr, 50)), "p99_us": float(np.percentile(arr, 99)),
            "count": len(samples)}


class Monitor:
    """Distinct values of a counter and when the last new one arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: set[float] = set()
        self.first = threading.Event()
        self.t_last = 0.0
        self.last = 0.0

    def add(self, value: float) -> None:
        now = time.monotonic()
        with self.lock:
            if value not in self.values:
                self.values.add(value)
                self.t_last = now
                self.last = max(self.last, value)
        self.first.set()

    def reset(self) -> None:
        with self.lock:
            self.values.clear()
            self.t_last = 0.0

    def collect(self, posted: int, base: int, t_start: float, t_end: float,
                max_wait: float) -> dict[str, Any]:
        """Wait (bounded) until the last posted value arrives or updates stop."""
        deadline = t_end + max_wait
        newest = float(base + posted)
        while time.monotonic() < deadline:
            with self.lock:
                if newest in self.values:
                    break
                quiet = self.t_last and time.monotonic() - max(self.t_last, t_end) > 1.0
            if quiet:
                break
            time.sleep(0.005)
        with self.lock:
            got = {v for v in self.values if base < v <= newest}
            seconds = max(t_end - t_start, 1e-9)
            return {"posted": posted, "distinct": len(got), "per_s": len(got) / seconds,
                    "loss": 1.0 - len(got) / max(posted, 1),
                    "newest_received": newest in got,
                    "backlog_s": max(0.0, self.t_last - t_end) if got else None}


# -- Channel Access (pyepics) ------------------------------------------------------
class CAClient:
    def __init__(self) -> None:
        from epics import ca

        self.ca = ca
        ca.initialize_libca()
        self.chids: dict[str, Any] = {}
        self.monitor = Monitor()
        self._subs: list[Any] = []

    def chid(self, name: str, timeout: float = 5.0) -> Any:
        if name not in self.chids:
            chid = self.ca.create_channel(name, connect=False, auto_cb=False)
            if not self.ca.connect_channel(chid, timeout=timeout):
                raise TimeoutError(f"{name} did not connect within {timeout} s")
            self.chids[name] = chid
        return self.chids[name]

    def connect_all(self, names: list[str], timeout: float) -> dict[str, Any]:
        ca = self.ca
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        chids = [ca.create_channel(n, connect=False, auto_cb=False) for n in names]
        connected = 0
        for chid in chids:
            if ca.connect_channel(chid, timeout=max(0.01, deadline - time.monotonic())):
                connected += 1
        for chid in chids:
            if ca.isConnected(chid):
                ca.get(chid, wait=False)
        ca.poll()
        got = 0
        for chid in chids:
            if ca.isConnected(chid) and ca.get_complete(
                    chid, timeout=max(0.01, deadline - time.monotonic())) is not None:
                got += 1
        seconds = time.perf_counter() - t0
        self.chids.update(zip(names, chids, strict=True))
        return {"seconds": seconds, "connected": connected, "got": got, "n": len(names)}

    def get(self, name: str) -> Any:
        return self.ca.get(self.chid(name), timeout=5.0)

    def put(self, name: str, value: float) -> None:
        self.ca.put(self.chid(name), value, wait=True, timeout=5.0)

    def wave(self, name: str) -> int:
        value = self.ca.get(self.chid(name), count=None, timeout=30.0)
        return int(np.asarray(value).nbytes)

    def subscribe(self, name: str) -> None:
        monitor = self.monitor

        def on_update(value: Any = None, **_: Any) -> None:
            monitor.add(float(value))

        self._subs.append(self.ca.create_subscription(self.chid(name), callback=on_update))


# -- PVAccess (p4p) ------------------------------------------------------------------
class PVAClient:
    def __init__(self) -> None:
        from p4p.client.thread import Context

        conf = {k: v for k, v in os.environ.items() if k.startswith("EPICS_PVA")}
        self.ctx = Context("pva", conf=conf, useenv=False, nt=False)
        self.monitor = Monitor()
        self._subs: list[Any] = []

    def connect_all(self, names: list[str], timeout: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        values = self.ctx.get(names, timeout=timeout, throw=False)
        seconds = time.perf_counter() - t0
        got = sum(1 for v in values if not isinstance(v, Exception))
        return {"seconds": seconds, "connected": got, "got": got, "n": len(names)}

    def get(self, name: str) -> Any:
        return self.ctx.get(name, timeout=5.0)

    def put(self, name: str, value: float) -> None:
        self.ctx.put(name, value, timeout=5.0)

    def wave(self, name: str) -> int:
        value = self.ctx.get(name, timeout=30.0)
        return int(np.asarray(value["value"]).nbytes)

    def subscribe(self, name: str) -> None:
        monitor = self.monitor

        def on_update(value: Any) -> None:
            if not isinstance(value, Exception):
                monitor.add(float(value["value"]))

        self._subs.append(self.ctx.monitor(name, on_update, notify_disconnect=False))


def timed_loop(fn: Any, count: int, max_seconds: float) -> list[float]:
    """Call ``fn(i)`` up to ``count`` times or ``max_seconds``; per-call durations."""
    samples = []
    end = time.monotonic() + max_seconds
    for i in range(count):
        t0 = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t0)
        if time.monotonic() > end:
            break
    return samples


def handle(client: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    kind = cmd["cmd"]
    if kind == "connect_all":
        return client.connect_all(cmd["names"], float(cmd["timeout"]))  # type: ignore[no-any-return]
    if kind == "latency":
        client.get(cmd["name"])  # connect first
        samples = timed_loop(lambda _: client.get(cmd["name"]), cmd["count"],
                             cmd["max_seconds"])
        return percentiles(samples)
    if kind == "puts":
        client.put(cmd["name"], 0.0)
        samples = timed_loop(lambda i: client.put(cmd["name"], float(i)), cmd["count"],
                             cmd["max_seconds"])
        return {"per_s": len(samples) / sum(samples), "count": len(samples)}
    if kind == "wave":
        client.wave(cmd["name"])  # connect and warm up
        nbytes = []
        t0 = time.perf_counter()
        samples = timed_loop(lambda _: nbytes.append(client.wave(cmd["name"])), cmd["count"],
                             cmd["max_seconds"])
        seconds = time.perf_counter() - t0
        return {"mb_per_s": sum(nbytes) / seconds / 1e6, "count": len(samples),
                "bytes": nbytes[-1] if nbytes else 0}
    if kind == "subscribe":
        client.subscribe(cmd["name"])
        ok = client.monitor.first.wait(10.0)
        client.monitor.reset()
        return {"subscribed": ok}
    if kind == "collect":
        return client.monitor.collect(  # type: ignore[no-any-return]
            int(cmd["posted"]), int(cmd["base"]), float(cmd["t_start"]), float(cmd["t_end"]),
            float(cmd["max_wait"]))
    raise ValueError(f"unknown command {kind!r}")


def main() -> None:
    protocol = sys.argv[1]
    client = CAClient() if protocol == "ca" else PVAClient()
    emit({"ready": True})
    for line in sys.stdin:
        cmd = parse_command(line)
        if cmd is None:
            break
        try:
            emit(handle(client, cmd))
        except Exception as exc:  # report, keep serving commands
            emit({"error": f"{type(exc).__name__}: {exc}"})
    sys.stdout.flush()
    os._exit(0)  # skip libca/pvxs teardown, which can be slow with many channels


if __name__ == "__main__":
    main()
