"""What serving PVI costs at start-up: podioc with and without its PVI PV.

```sh
.venv/bin/python benchmarks/startup.py --n 10000 --rounds 5
```

Each round starts ``podioc`` (PVI on, the default) and ``podioc-nopvi`` in
turn (order alternating) exactly as ``run.py`` does (process spawn to the first
read of ``S0`` over CA and PVA, see its README) and stops them; then one more
``make_pvi`` alone is timed in this process (what PVI adds to a start-up,
without the noise of process start-up on a busy machine), and one more
``podioc`` start times a client's first get of ``PREFIX:PVI`` itself (the
server builds it then; the client decodes a 10,000-field structure) and a
second. Prints medians and the difference in per cent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from run import QUICK, Instance


def startup(kind: str, n: int) -> float:
    inst = Instance(kind, n, QUICK)
    try:
        inst.start()
        return float(inst.out["startup_s"] or 0.0)
    finally:
        inst.close()


def first_pvi_reads(n: int) -> tuple[float, float]:
    """Seconds for a fresh client's first get of PREFIX:PVI, then for a second get."""
    from p4p.client.thread import Context

    inst = Instance("podioc", n, QUICK)
    try:
        inst.start()
        conf = {"EPICS_PVA_ADDR_LIST": "127.0.0.1", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
                "EPICS_PVA_BROADCAST_PORT": str(inst.ports.pva_broadcast),
                "EPICS_PVA_SERVER_PORT": str(inst.ports.pva)}
        ctx = Context("pva", conf=conf, useenv=False, nt=False)
        try:
            t0 = time.monotonic()
            ctx.get(inst.name("PVI"), timeout=120)
            t1 = time.monotonic()
            ctx.get(inst.name("PVI"), timeout=120)
            return t1 - t0, time.monotonic() - t1
        finally:
            ctx.close()
    finally:
        inst.close()


def make_pvi_seconds(n: int, rounds: int) -> float:
    """Median time of what serving PVI adds to start-up, in this process: the grouping
    and one closed SharedPV per group (``make_pvi``) for N PVs."""
    import asyncio

    from podioc import IOC, pv
    from podioc.protocols.pva.pvi import make_pvi

    ioc = IOC("B:")
    for i in range(n):
        ioc.add_pv(pv.float(0.0, name=f"S{i}"))

    async def once() -> float:
        t0 = time.perf_counter()
        make_pvi("B:", ioc.pvs, "PVI")
        return time.perf_counter() - t0

    return statistics.median(asyncio.run(once()) for _ in range(rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10000, help="number of scalar PVs")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"podioc": [], "podioc-nopvi": []}
    for i in range(args.rounds):
        for kind in (("podioc", "podioc-nopvi") if i % 2 == 0 else ("podioc-nopvi", "podioc")):
            times[kind].append(startup(kind, args.n))
    on, off = (statistics.median(times[k]) for k in ("podioc", "podioc-nopvi"))
    print(f"start-up to first PV at {args.n} PVs, median of {args.rounds}:")
    print(f"  with PVI    {on:.3f} s  {sorted(round(t, 3) for t in times['podioc'])}")
    print(f"  without PVI {off:.3f} s  {sorted(round(t, 3) for t in times['podioc-nopvi'])}")
    print(f"  PVI costs   {on - off:+.3f} s ({100 * (on - off) / off:+.1f} %)")
    print(f"  in process, make_pvi for {args.n} PVs: "
          f"{1000 * make_pvi_seconds(args.n, args.rounds):.1f} ms (median)")
    first, second = first_pvi_reads(args.n)
    print(f"  a client's first get of PREFIX:PVI (built on demand) {first:.3f} s, "
          f"second get {second:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
