"""A load-test client process: many CA circuits or PVA connections, each monitoring.

    python load_worker.py ca|pva CLIENTS CONF_JSON PV [PV ...]

- ``ca``: caproto threading contexts, each with up to 100 circuits (a CA
  client opens one circuit per priority, 0..99); every circuit connects all
  PVs and monitors the first.
- ``pva``: one p4p context per client; each monitors every PV.

``CONF_JSON`` is the client environment (CA) or p4p conf (PVA). The worker
prints one JSON line once every client has every channel connected and two
updates of the first PV, or after 150 s: ``{"ready": clients, "channels":
connected channels, "seconds": s}``; then it waits for a line on stdin and
prints ``{"updates": [per-client update counts of the first PV]}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


class Client:
    """One client's channels and its update count of the first PV.

    Bound methods as callbacks: caproto holds callbacks weakly.
    """

    def __init__(self) -> None:
        self.updates = 0
        self.lock = threading.Lock()
        self.pvs: list[Any] = []  # CA PV objects
        self.seen: set[str] = set()  # PVA names that delivered a value

    def on_ca(self, sub: Any, response: Any) -> None:
        with self.lock:
            self.updates += 1

    def on_pva(self, name: str, first: bool, value: Any) -> None:
        if isinstance(value, Exception):
            return
        with self.lock:
            self.seen.add(name)
            if first:
                self.updates += 1

    def connected(self) -> int:
        if self.pvs:
            return sum(1 for pv in self.pvs if pv.connected)
        return len(self.seen)


def run_ca(count: int, env: dict[str, str], names: list[str]) -> tuple[list[Client], Any]:
    os.environ.update(env)
    from caproto.threading.client import Context, SharedBroadcaster

    clients, keep = [], []
    contexts = [Context(SharedBroadcaster()) for _ in range((count + 99) // 100)]
    for i in range(count):
        client = Client()
        client.pvs = contexts[i // 100].get_pvs(*names, priority=i % 100, timeout=120)
        sub = client.pvs[0].subscribe(data_type="time")
        sub.add_callback(client.on_ca)
        clients.append(client)
        keep.append(sub)
    return clients, (contexts, keep)


def kick(sub: Any) -> None:
    """Work around a p4p 4.3 client race: an update that arrives before
    ``Context.monitor()`` has stored its handle is dropped ("Lost Subscription
    update"), and pvxs never signals that queue again, so the monitor stays
    silent forever. One extra wake-up after creation empties the queue."""
    if getattr(sub, "_S", None) is not None:
        sub._event()


def run_pva(count: int, conf: dict[str, str], names: list[str]) -> tuple[list[Client], Any]:
    from p4p.client.thread import Context

    clients, keep = [], []
    for _ in range(count):
        ctx = Context("pva", conf=conf, useenv=False)
        client = Client()
        subs = [ctx.monitor(name, lambda v, n=name, f=(i == 0), c=client: c.on_pva(n, f, v))
                for i, name in enumerate(names)]
        for sub in subs:
            kick(sub)
        clients.append(client)
        keep.append((ctx, subs))
    return clients, keep


def main() -> int:
    protocol, count, conf = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    names = sys.argv[4:]
    start = time.monotonic()
    clients, keep = (run_ca if protocol == "ca" else run_pva)(count, conf, names)
    deadline = start + 150

    def ready(client: Client) -> bool:
        return client.updates >= 2 and client.connected() == len(names)

    while time.monotonic() < deadline and not all(ready(c) for c in clients):
        time.sleep(0.1)
    missing = sorted({n for c in clients for n in names if c.seen and n not in c.seen}
                     | {pv.name for c in clients for pv in c.pvs if not pv.connected})
    print(json.dumps({"ready": sum(ready(c) for c in clients),
                      "channels": sum(c.connected() for c in clients),
                      "seconds": round(time.monotonic() - start, 2),
                      "missing": missing[:10],
                      "slow": [c.updates for c in clients if c.updates < 2][:10]}), flush=True)
    sys.stdin.readline()
    print(json.dumps({"updates": [c.updates for c in clients]}), flush=True)
    del keep
    os._exit(0)  # skip tearing down hundreds of contexts one by one


if __name__ == "__main__":
    sys.exit(main())
