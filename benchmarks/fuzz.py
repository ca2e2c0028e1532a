"""Bounded protocol fuzzing of a running podioc IOC; prints messages sent, crashes, peak RSS.

    .venv/bin/python benchmarks/fuzz.py [--messages 20000] [--seed 1]
                                        [--kinds ca-tcp ca-udp pva-tcp pva-udp]
                                        [--check-every 1000] [--max-growth 100]

Starts ``podioc run`` (the test Target IOC, loopback only, free ports), then
for each kind sends ``--messages`` malformed, truncated, oversized and random
messages (see ``tests/fuzz/corpus.py``): CA over TCP after a valid opening,
CA search datagrams, PVA over TCP after part of a real p4p client's opening,
PVA search datagrams. Every ``--check-every`` messages a normal CA and PVA
client must get, put and monitor. A crash (the IOC exits) is counted, its log
tail printed, and the IOC restarted. Exit status 1 on any crash, failed check
or RSS growth above ``--max-growth`` MiB.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from fuzz import checks, corpus  # noqa: E402
from fuzz.checks import Health, HealthError, rss_mb  # noqa: E402
from harness import IocProcess  # noqa: E402

KINDS = ("ca-tcp", "ca-udp", "pva-tcp", "pva-udp")


class Run:
    """One IOC under fuzz, restarted after a crash."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.config = checks.target_config(directory, big=4096, big_period=0.1, tick=0.05,
                                           access=checks.FUZZ_ACCESS)
        self.crashes: list[str] = []
        self.failed_checks: list[str] = []
        self.peak = 0.0
        self.start_rss = 0.0
        self.ioc: IocProcess
        self.health: Health
        self.opening: list[bytes] = []
        self._start()

    def _start(self) -> None:
        self.ioc = IocProcess(self.config, log_dir=self.directory, name="fuzz").start()
        self.health = Health(self.ioc)
        self.health.check()
        if not self.opening:
            self.opening = checks.record_pva_opening(self.ioc)
        self.start_rss = self.start_rss or rss_mb(self.ioc.pid)
        self.names = [self.ioc.pv(n) for n in checks.NAMES]

    def check(self, kind: str) -> None:
        if not self.ioc.alive():
            tail = self.ioc.log_text()[-3000:]
            self.crashes.append(f"{kind}: exit {self.ioc.proc and self.ioc.proc.poll()}")
            print(f"CRASH during {kind}; IOC log tail:\n{tail}", flush=True)
            self.health.close()
            self.ioc.stop()
            self._start()
            return
        self.peak = max(self.peak, rss_mb(self.ioc.pid))
        try:
            self.health.check()
        except HealthError as exc:
            self.failed_checks.append(f"{kind}: {exc}")
            print(f"FAILED CHECK during {kind}: {exc}", flush=True)

    def close(self) -> int | None:
        self.health.close()
        return self.ioc.stop()


def fuzz_kind(run: Run, kind: str, rng: random.Random, total: int, every: int) -> int:
    sent = next_check = 0
    while sent < total:
        ioc = run.ioc
        if kind == "ca-tcp":
            sent += corpus.ca_session(ioc.ca_port, rng, run.names, rng.randrange(1, 40),
                                      max_payload=1 << 20)
        elif kind == "ca-udp":
            sent += corpus.send_datagrams(
                ioc.ca_port, lambda _: corpus.random_ca_datagram(rng, run.names), 50)
        elif kind == "pva-tcp":
            sent += corpus.pva_session(ioc.pva_port, rng, run.opening, run.opening,
                                       rng.randrange(1, 40))
        else:
            sent += corpus.send_datagrams(
                ioc.pva_bport, lambda port: corpus.random_pva_datagram(rng, run.names, port),
                50)
        if sent >= next_check:
            run.check(kind)
            next_check = sent + every
    run.check(kind)
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000, help="messages per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--check-every", type=int, default=1000)
    parser.add_argument("--max-growth", type=float, default=100.0,
                        help="MiB of RSS growth tolerated")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep the IOC's log here (default: a temporary directory)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="podioc-fuzz-") as tmp:
        directory = args.log_dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        run = Run(directory)
        try:
            for kind in args.kinds:
                start = time.monotonic()
                sent = fuzz_kind(run, kind, rng, args.messages, args.check_every)
                rows.append((kind, sent, time.monotonic() - start))
                print(f"{kind:8} {sent:7d} messages in {rows[-1][2]:5.1f} s  "
                      f"RSS {rss_mb(run.ioc.pid):6.1f} MiB  checks ok {run.health.checks}",
                      flush=True)
            final = rss_mb(run.ioc.pid)
        finally:
            code = run.close()
    growth = final - run.start_rss
    print()
    print(f"{'kind':8} {'messages':>9}")
    for kind, sent, _ in rows:
        print(f"{kind:8} {sent:9d}")
    print(f"crashes: {len(run.crashes)}  failed checks: {len(run.failed_checks)}  "
          f"exit code at the end: {code}")
    print(f"RSS: start {run.start_rss:.1f} MiB, peak {max(run.peak, final):.1f} MiB, "
          f"end {final:.1f} MiB (growth {growth:+.1f} MiB, limit {args.max_growth:g})")
    ok = not run.crashes and not run.failed_checks and growth <= args.max_growth and code == 0
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

