"""What serving PVI costs at start-up: podioc with and without its PVI PV.

```sh
.venv/bin/python benchmarks/startup.py --n 10000 --rounds 5
```

Each round starts ``podioc`` (PVI on, the default) and ``podioc-nopvi`` in
turn (order alternating) exactly as ``run.py`` does (process spawn to the first
read of ``S0`` over CA and PVA, see its README) and stops them; then one more
``podioc`` start measures the first read of ``PREFIX:PVI`` itself (the build a
first PVI client pays for). Prints medians and the difference in per cent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from probe import probe_pva
from run import QUICK, Instance


def startup(kind: str, n: int) -> float:
    inst = Instance(kind, n, QUICK)
    try:
        inst.start()
        return float(inst.out["startup_s"] or 0.0)
    finally:
        inst.close()


def first_pvi_read(n: int) -> float:
    inst = Instance("podioc", n, QUICK)
    try:
        inst.start()
        t0 = time.monotonic()
        done = probe_pva(inst.name("PVI"), inst.ports.pva, inst.ports.pva_broadcast, 60.0)
        return done - t0
    finally:
        inst.close()


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
    print(f"  first read of PREFIX:PVI (built on demand): {first_pvi_read(args.n):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
