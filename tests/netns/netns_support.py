"""IOCs and clients inside the namespaces of a :class:`topology.Topology`."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from topology import Host

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEMO_YAML = REPO / "iocs" / "demo" / "demo.yaml"
CLIENT = HERE / "netns_client.py"
PY = sys.executable
SERVING_RE = re.compile(r"serving (?P<count>\d+) PVs \(prefix '(?P<prefix>[^']*)'\): "
                        r"CA port (?P<ca>\S+), PVA port (?P<pva>\S+)")

#: NsIoc objects alive now (their logs go into failure reports).
LIVE: list[NsIoc] = []


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without EPICS_*/PODIOC_*: clients and IOCs at their defaults."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EPICS_", "PODIOC_", "KUBERNETES_"))}
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def unique_prefix(stem: str) -> str:
    """A PV prefix unique to this run."""
    return f"{stem}{uuid.uuid4().hex[:6]}:"


@functools.lru_cache(maxsize=1)
def demo_suffixes() -> tuple[str, ...]:
    """Names (without prefix) of every PV the demo IOC serves, from ``podioc describe``."""
    out = subprocess.run([PY, "-m", "podioc", "describe", str(DEMO_YAML), "--prefix", "P:",
                          "--json"], capture_output=True, text=True, check=True, timeout=60)
    return tuple(pv["name"][2:] for pv in json.loads(out.stdout)["pvs"])


class NsIoc:
    """``podioc run`` of the demo IOC (or ``target``) in a namespace, at default ports."""

    def __init__(self, host: Host, prefix: str, log_dir: Path, env: Mapping[str, str] = (
            {}), target: Path | str = DEMO_YAML) -> None:
        self.host = host
        self.prefix = prefix
        self.env = dict(env)
        self.target = str(target)
        self.log_path = log_dir / f"ioc-{prefix.rstrip(':')}-{uuid.uuid4().hex[:4]}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.ca_port = self.pva_port = 0
        self._offset = 0

    def start(self, timeout: float = 60) -> NsIoc:
        """Start and wait for the "serving" line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self._offset = log.tell()
            self.proc = self.host.run([PY, "-m", "podioc", "run", self.target, "--prefix",
                                       self.prefix], env=clean_env(**self.env),
                                      stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        LIVE.append(self)
        deadline = time.monotonic() + timeout
        while True:
            match = SERVING_RE.search(self.log()[self._offset:])
            if match:
                self.ca_port, self.pva_port = int(match["ca"]), int(match["pva"])
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"IOC {self.prefix} in {self.host.ns} did not start:\n"
                                     f"{self.log()[-4000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def names(self, suffixes: Sequence[str] | None = None) -> list[str]:
        """Full PV names."""
        return [self.prefix + s for s in (suffixes or demo_suffixes())]

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL (by PID); the exit code."""
        if self in LIVE:
            LIVE.remove(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def run_client(host: Host, spec: Mapping[str, Any], env: Mapping[str, str] | None = None,
               timeout: float = 60) -> dict[str, Any]:
    """Run one ``netns_client.py`` operation in ``host``; its JSON result."""
    done = host.call([PY, str(CLIENT), json.dumps(dict(spec))], env=env or clean_env(),
                     timeout=timeout)
    for line in reversed(done.stdout.splitlines()):
        with contextlib.suppress(ValueError):
            result: dict[str, Any] = json.loads(line)
            return result
    raise AssertionError(f"client {spec['op']} in {host.ns} printed no result "
                         f"(exit {done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")


class Watcher:
    """A long-running ``watch_ca`` client; events arrive on a queue."""

    def __init__(self, host: Host, name: str, env: Mapping[str, str],
                 duration: float = 120) -> None:
        self.proc = host.run([PY, str(CLIENT), json.dumps(
            {"op": "watch_ca", "name": name, "duration": duration})], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.put(json.loads(line))

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """The next event of kind ``event`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                break
            if item["event"] == event:
                return item
        raise AssertionError(f"no {event!r} event within {timeout} s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def doctor(host: Host, env: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """``podioc doctor --json`` in ``host``: exit code and report."""
    done = host.call([PY, "-m", "podioc", "doctor", "--json"], env=env or clean_env(),
                     timeout=60)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"doctor printed no JSON (exit {done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}") from None


def checks(report: Mapping[str, Any], status: str) -> list[str]:
    """Messages of the checks with ``status``."""
    return [c["message"] for c in report["checks"] if c["status"] == status]
