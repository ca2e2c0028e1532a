"""podioc against raw caproto, raw p4p, pythonSoftIOC and the C IOC, measured in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--json out.json] [--rounds R]
                                       [--n 2000 10000] [--servers podioc caproto ...]

Each server runs in its own process on loopback with free ports; real clients
(pyepics for CA, p4p for PVA) run in their own processes. Every figure is the
median over the rounds; the server order rotates from round to round. Ratios
are "podioc is better by": >= 1.0 means podioc is as good or better.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from basetools import run_acctst_first, run_catime  # noqa: E402
from epicsbase import find_base, unavailable  # noqa: E402
from probe import probe_ca, probe_pva  # noqa: E402
from report import SERVER_PROTOCOLS, summarise, table, targets  # noqa: E402

MAX_ARRAY_BYTES = 20_000_000


@dataclass(frozen=True)
class Profile:
    """How hard to push: the full run is for people, quick keeps the script working."""

    ns: tuple[int, ...]
    rounds: int
    settle: float  # s after start-up before idle figures
    idle_window: float  # s over which idle CPU is measured
    gets: int
    puts: int
    loop_seconds: float  # upper bound for each get/put loop
    monitor_seconds: float
    monitor_rates: tuple[int, ...]  # 0 = flood
    wave_gets: int
    connect_timeout: float
    catime_channels: int  # EPICS base catime: channels to one PV (0: not run)
    catime_deadline: float  # s; catime is killed then
    acctst_deadline: float  # s for acctst's first test (0: not run)


FULL = Profile(ns=(2000, 10000), rounds=3, settle=5.0, idle_window=5.0, gets=2000, puts=2000,
               loop_seconds=5.0, monitor_seconds=3.0, monitor_rates=(0, 1000, 5000),
               wave_gets=10, connect_timeout=90.0, catime_channels=10_000,
               catime_deadline=300.0, acctst_deadline=150.0)
QUICK = Profile(ns=(200,), rounds=1, settle=0.3, idle_window=0.5, gets=200, puts=200,
                loop_seconds=1.0, monitor_seconds=0.5, monitor_rates=(0, 1000, 5000),
                wave_gets=2, connect_timeout=30.0, catime_channels=100,
                catime_deadline=30.0, acctst_deadline=0.0)


# -- processes ------------------------------------------------------------------------
def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in ns (the scheduler's own count:
    psutil's CPU times come in 10 ms clock ticks, 0.2 % of a 5 s window)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


def free_port(udp_too: bool = False) -> int:
    """A loopback port free for TCP (and UDP when asked)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not udp_too:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port found")


@dataclass
class Ports:
    ca: int = field(default_factory=lambda: free_port(udp_too=True))
    repeater: int = field(default_factory=lambda: free_port(udp_too=True))
    pva: int = field(default_factory=free_port)
    pva_broadcast: int = field(default_factory=lambda: free_port(udp_too=True))

    def env(self) -> dict[str, str]:
        """EPICS environment for servers and clients alike, pinned to loopback."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
        env.update({
            "PYTHONUNBUFFERED": "1",
            "EPICS_CA_SERVER_PORT": str(self.ca), "EPICS_CAS_SERVER_PORT": str(self.ca),
            "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO", "EPICS_CA_ADDR_LIST": "127.0.0.1",
            "EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CA_REPEATER_PORT": str(self.repeater),
            "EPICS_CAS_BEACON_PORT": str(self.repeater),
            "EPICS_CA_MAX_ARRAY_BYTES": str(MAX_ARRAY_BYTES),
            "EPICS_PVA_SERVER_PORT": str(self.pva), "EPICS_PVAS_SERVER_PORT": str(self.pva),
            "EPICS_PVA_BROADCAST_PORT": str(self.pva_broadcast),
            "EPICS_PVAS_BROADCAST_PORT": str(self.pva_broadcast),
            "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_PVA_ADDR_LIST": "127.0.0.1",
            "EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        })
        return env


class Worker:
    """A child process spoken to in JSON lines over stdin/stdout."""

    def __init__(self, args: list[str], env: dict[str, str], label: str) -> None:
        self.label = label
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append),
                         daemon=True).start()

    @staticmethod
    def _pump(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line)

    def read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, min(0.5, deadline - time.monotonic())))
            except queue.Empty:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    lines = [line for line in self.stderr if line.strip()]
                    tail = "".join(lines[:5] + (["...\n"] if len(lines) > 10 else [])
                                   + lines[-5:] if len(lines) > 10 else lines)
                    state = ("exited " + str(self.proc.returncode)
                             if self.proc.poll() is not None else "timed out")
                    raise RuntimeError(f"{self.label} {state}; stderr:\n{tail}") from None
                continue
            if line.startswith("{"):
                return json.loads(line)  # type: ignore[no-any-return]

    def request(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        reply = self.read(timeout)
        if "error" in reply:
            raise RuntimeError(f"{self.label}: {reply['error']}")
        return reply

    def close(self) -> None:
        """Ask to quit, then terminate, then kill: only this process, by its pid."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        for action in (None, self.proc.terminate, self.proc.kill):
            if action is not None:
                with contextlib.suppress(OSError):
                    action()
            try:
                self.proc.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                continue


# -- one server instance --------------------------------------------------------------
class Instance:
    """One server process plus its clients, and the measures taken on it."""

    def __init__(self, kind: str, n: int, profile: Profile) -> None:
        self.kind, self.n, self.profile = kind, n, profile
        self.protocols = SERVER_PROTOCOLS[kind]
        self.prefix = f"B{secrets.token_hex(3).upper()}"
        self.ports = Ports()
        self.env = self.ports.env()
        self.server: Worker | None = None
        self.pid = 0  # the process measured (the wrapper's child for cioc)
        self.clients: dict[str, Worker] = {}
        self.out: dict[str, float | None] = {}

    def name(self, suffix: str) -> str:
        return f"{self.prefix}:{suffix}"

    def client(self, protocol: str) -> Worker:
        if protocol not in self.clients:
            worker = Worker([sys.executable, str(HERE / "clients.py"), protocol], self.env,
                            f"{protocol} client of {self.kind}")
            worker.read(60)
            self.clients[protocol] = worker
        return self.clients[protocol]

    def start(self) -> None:
        """Spawn the server and time its start-up to the first value on each protocol."""
        for protocol in self.protocols:  # clients first: their import time is not the server's
            self.client(protocol)
        results: dict[str, float | None] = {}
        timeout = 60.0
        probes = {
            "ca": lambda: probe_ca(self.name("S0"), self.ports.ca, timeout),
            "pva": lambda: probe_pva(self.name("S0"), self.ports.pva,
                                     self.ports.pva_broadcast, timeout),
        }
        t0 = time.monotonic()
        self.server = Worker([sys.executable, str(HERE / "servers.py"), self.kind,
                              "--n", str(self.n), "--prefix", self.prefix], self.env,
                             f"{self.kind} server")
        threads = []
        for protocol in self.protocols:
            def run(p: str = protocol) -> None:
                try:
                    results[p] = probes[p]()
                except Exception as exc:
                    print(f"  ! {p} probe of {self.kind}: {exc!r}", file=sys.stderr)
            threads.append(threading.Thread(target=run, daemon=True))
            threads[-1].start()
        for thread in threads:
            thread.join(timeout + 5)
        ready = self.server.read(120)
        if "error" in ready:
            raise RuntimeError(f"{self.kind} server: {ready['error']}")
        self.pid = int(ready.get("pid", self.server.proc.pid))
        t0 = float(ready.get("t_spawn", t0))  # a wrapper reports when it spawned the server
        for protocol in self.protocols:
            done = results.get(protocol)
            if done is None:
                raise RuntimeError(f"{self.kind}: no {protocol} answer within {timeout} s:\n"
                                   + "".join(self.server.stderr[-15:]))
            self.out[f"startup_{protocol}_s"] = done - t0
        self.out["startup_s"] = max(self.out[f"startup_{p}_s"] or 0 for p in self.protocols)
        self.server.request({"cmd": "prepare"}, 120)

    def idle(self) -> None:
        proc = psutil.Process(self.pid)
        time.sleep(self.profile.settle)
        c0, t0 = cpu_ns(self.pid), time.monotonic()
        time.sleep(self.profile.idle_window)
        c1, t1 = cpu_ns(self.pid), time.monotonic()
        self.out["idle_cpu_pct"] = 100.0 * (c1 - c0) / 1e9 / (t1 - t0)
        self.out["idle_rss_mb"] = proc.memory_info().rss / 1e6

    def connect_all(self) -> None:
        names = [self.name(f"S{i}") for i in range(self.n)]
        proc = psutil.Process(self.pid)
        for protocol in self.protocols:
            client = self.client(protocol)
            c0 = proc.cpu_times()
            reply = client.request(
                {"cmd": "connect_all", "names": names,
                 "timeout": self.profile.connect_timeout}, self.profile.connect_timeout + 30)
            c1 = proc.cpu_times()
            self.out[f"connect_{protocol}_server_cpu_s"] = (
                c1.user - c0.user + c1.system - c0.system)
            if reply["got"] != self.n:
                print(f"  ! {self.kind} {protocol}: got {reply['got']} of {self.n}",
                      file=sys.stderr)
            self.out[f"connect_{protocol}_s"] = reply["seconds"]
        self.out["loaded_rss_mb"] = proc.memory_info().rss / 1e6

    def traffic(self) -> None:
        """Latency, puts, monitors and the large waveform on every protocol."""
        assert self.server is not None
        p = self.profile
        for protocol in self.protocols:
            client = self.client(protocol)
            lat = client.request({"cmd": "latency", "name": self.name("S0"), "count": p.gets,
                                  "max_seconds": p.loop_seconds}, p.loop_seconds + 30)
            self.out[f"get_p50_us_{protocol}"] = lat["p50_us"]
            self.out[f"get_p99_us_{protocol}"] = lat["p99_us"]
            puts = client.request({"cmd": "puts", "name": self.name("PUT"), "count": p.puts,
                                   "max_seconds": p.loop_seconds}, p.loop_seconds + 30)
            self.out[f"puts_per_s_{protocol}"] = puts["per_s"]
            client.request({"cmd": "subscribe", "name": self.name("COUNTER")}, 30)
            for index, rate in enumerate(p.monitor_rates):
                label = "flood" if rate == 0 else f"{rate}hz"
                base = (index + 1) * 10_000_000
                run = self.server.request({"cmd": "counter", "rate": rate, "base": base,
                                           "duration": p.monitor_seconds},
                                          p.monitor_seconds + 30)
                got = client.request({"cmd": "collect", **run, "max_wait": 10.0}, 40)
                self.out[f"mon_{label}_posted_per_s_{protocol}"] = (
                    run["posted"] / (run["t_end"] - run["t_start"]))
                self.out[f"mon_{label}_per_s_{protocol}"] = got["per_s"]
                self.out[f"mon_{label}_loss_pct_{protocol}"] = 100.0 * got["loss"]
                self.out[f"mon_{label}_backlog_s_{protocol}"] = got["backlog_s"]
            wave = client.request({"cmd": "wave", "name": self.name("WAVE"),
                                   "count": p.wave_gets, "max_seconds": p.loop_seconds * 4},
                                  p.loop_seconds * 4 + 60)
            self.out[f"wave_mb_s_{protocol}"] = wave["mb_per_s"]
            client.close()  # each protocol measured alone (no monitor of the other left)
            del self.clients[protocol]

    def base_tools(self) -> None:
        """EPICS base's catime and acctst (first test) against this server's S0."""
        p = self.profile
        base = find_base()
        if base is None:
            return
        if p.catime_channels:
            got = run_catime(base, self.env, self.name("S0"), p.catime_channels,
                             p.catime_deadline)
            self._note_cut("catime", got, p.catime_deadline)
            self.out.update({k: float(v) for k, v in got.items() if k.endswith("_ca")})
        if p.acctst_deadline:
            got = run_acctst_first(base, self.env, self.name("S0"), p.acctst_deadline)
            self._note_cut("acctst's first test", got, p.acctst_deadline)
            self.out["acctst_first_s_ca"] = float(got["acctst_first_s_ca"])

    def _note_cut(self, what: str, got: dict[str, Any], deadline: float) -> None:
        if got["cut"]:
            note = (f"{self.kind}: {what} did not finish within {deadline:.0f} s; "
                    f"the figure is that lower bound")
            NOTES.append(note)
            print(f"  ! {note}; its last output:\n{got['output'][-400:]}", file=sys.stderr)

    def close(self) -> None:
        for worker in [*self.clients.values(), *([self.server] if self.server else [])]:
            worker.close()


#: Things the table cannot show (figures cut by a deadline), printed after it.
NOTES: list[str] = []
#: Servers EPICS base's catime and acctst run against (minutes each on a Python server).
BASE_TOOL_SERVERS = ("podioc", "cioc")


# -- the run --------------------------------------------------------------------------
def run_all(profile: Profile, servers: list[str]) -> dict[str, dict[str, list[float]]]:
    """results[server][metric@N] = one value per round."""
    results: dict[str, dict[str, list[float]]] = {s: {} for s in servers}
    for rnd in range(profile.rounds):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
        for n in profile.ns:
            for kind in order:
                label = f"round {rnd + 1}/{profile.rounds}, N={n}, {kind}"
                print(f"- {label}", file=sys.stderr, flush=True)
                inst = Instance(kind, n, profile)
                try:
                    try:
                        inst.start()
                    except RuntimeError as exc:  # e.g. a port taken meanwhile: once more
                        print(f"  ! {label}: {exc}; retrying on fresh ports", file=sys.stderr)
                        inst.close()
                        inst = Instance(kind, n, profile)
                        inst.start()
                    inst.idle()
                    inst.connect_all()
                    if n == profile.ns[0]:
                        inst.traffic()
                        if kind in BASE_TOOL_SERVERS:
                            inst.base_tools()
                except Exception as exc:
                    print(f"  ! {label} failed: {exc}", file=sys.stderr, flush=True)
                finally:
                    inst.close()
                for key, value in inst.out.items():
                    if value is not None:
                        metric = f"{key}@{n}" if key.split("_")[0] in (
                            "startup", "idle", "connect", "loaded") else key
                        results[kind].setdefault(metric, []).append(value)
    return results


def compile_bytecode() -> None:
    """Write the bytecode of podioc and of these scripts' modules, so that every
    server starts as an installed package does (pip compiles at install; a
    checkout run with PYTHONDONTWRITEBYTECODE=1 would compile podioc's ~90
    modules at every start, about 60 ms here). The files go to the
    ``__pycache__`` folders git ignores."""
    import compileall

    import podioc

    for folder in (Path(podioc.__file__).parent, Path(__file__).parent):
        compileall.compile_dir(str(folder), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small and short (CI)")
    parser.add_argument("--json", type=Path, help="write results here as well")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--n", type=int, nargs="+", help="override the PV counts")
    parser.add_argument("--servers", nargs="+", choices=sorted(SERVER_PROTOCOLS),
                        help="servers to run (default: all available)")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    if args.rounds or args.n:
        profile = Profile(**{**profile.__dict__, **({"rounds": args.rounds} if args.rounds
                                                    else {}),
                             **({"ns": tuple(args.n)} if args.n else {})})
    servers = args.servers or ["podioc", "caproto", "p4p", "softioc", "cioc"]
    if "softioc" in servers:
        try:
            import softioc  # noqa: F401
        except ImportError:
            print("pythonSoftIOC (the 'softioc' package, extra 'bench') is not installed; "
                  "skipping it", file=sys.stderr)
            servers.remove("softioc")
    if "cioc" in servers and (why := unavailable("softIocPVA")):
        if os.environ.get("CI") == "true":  # CI must measure the C reference
            print(f"the C IOC cannot run: {why}", file=sys.stderr)
            return 2
        print(f"skipping the C IOC (EPICS base softIocPVA): {why}", file=sys.stderr)
        servers.remove("cioc")
    compile_bytecode()
    started = time.time()
    results = run_all(profile, servers)
    summary = summarise(results)
    checks = targets(summary, profile.ns)
    print(f"\npodioc benchmark ({'quick' if args.quick else 'full'}; {profile.rounds} round(s); "
          f"medians; {platform.node()}, {os.cpu_count()} CPUs, "
          f"{time.time() - started:.0f} s)\n")
    print(table(summary, servers))
    print("\nratios: 'vs X' >= 1.00 means podioc is as good as X or better "
          "(times and losses: X/podioc, rates: podioc/X)\n")
    for label, met, detail in checks:
        mark = {True: "MET", False: "NOT MET", None: "n/a"}[met]
        print(f"  [{mark:7}] {label}: {detail}")
    for note in NOTES:
        print(f"  note: {note}")
    if args.json:
        args.json.write_text(json.dumps({
            "profile": profile.__dict__, "servers": servers, "raw": results, **summary,
            "notes": NOTES,
            "targets": [{"target": t, "met": m, "detail": d} for t, m, d in checks]},
            indent=2))
    failed = [s for s in servers if not results[s]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
