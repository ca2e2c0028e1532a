"""A simulated beamline subnet made of Linux network namespaces (tests only).

Layout (every name carries the topology's tag, ``pdi<pid>x<random>t<n>``)::

    <tag>-br      holds bridge br0 only (the beamline switch); never the host's namespace
    <tag>-n1 ...  "nodes": eth0 on the subnet; IOCs run here (host networking = this namespace)
    <tag>-c1 ...  "clients": eth0 on the subnet; EPICS clients run here
    <tag>-p1 ...  "pods" behind a node's NAT (only with ``add_pod``): eth0 on the node's
                  private cni0 bridge, reached from the subnet through iptables DNAT rules
                  on the node's address, like a Kubernetes Service / hostPort

The subnet's addresses (default 10.77.0.0/24) exist only inside these namespaces;
there is no route out of them and nothing is attached to the host's namespace.
Every namespace has ``lo`` up. ``Topology.close()`` kills the processes it
started (by PID, then whatever else is left inside its namespaces) and deletes
the namespaces, which removes their veth pairs and bridges with them; it runs
from fixture finalizers, ``atexit`` and on SIGTERM. ``sweep_stale()`` removes
namespaces of earlier runs whose process is gone (e.g. killed with SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

PREFIX = "pdi"
#: Every namespace of this process starts with this (pid + random: runs never collide).
RUN_TAG = f"{PREFIX}{os.getpid()}x{secrets.token_hex(3)}"
_TAG_RE = re.compile(rf"^{PREFIX}(\d+)x[0-9a-f]+t\d+-")
_COUNTER = itertools.count(1)
_LIVE: weakref.WeakSet[Topology] = weakref.WeakSet()
_HOOKS_INSTALLED = False


def available() -> str | None:
    """``None`` if namespaces can be made here, else why not."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    return None


def nat_available() -> str | None:
    """``None`` if iptables is installed, else why not (``.ci/run`` installs it)."""
    return None if shutil.which("iptables") else "iptables is missing (apt-get install iptables)"


def sh(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command (no shell), raising with its stderr on failure."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def list_namespaces() -> list[str]:
    """Names of all network namespaces ``ip netns`` knows."""
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace_pids(ns: str) -> None:
    """SIGKILL whatever still runs inside a namespace of ours, by PID."""
    for _ in range(20):
        pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _delete_namespace(ns: str) -> None:
    _kill_namespace_pids(ns)
    sh("ip", "netns", "del", ns, check=False)


def sweep_stale() -> list[str]:
    """Delete namespaces of earlier test runs whose pytest process no longer exists."""
    removed = []
    for ns in list_namespaces():
        m = _TAG_RE.match(ns)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            _delete_namespace(ns)
            removed.append(ns)
        except PermissionError:
            pass
    return removed


def new_tag() -> str:
    """A name prefix unique to this process and call: ``pdi<pid>x<hex>t<n>``."""
    return f"{RUN_TAG}t{next(_COUNTER)}"


def run_leftovers() -> list[str]:
    """Namespaces of this process (``RUN_TAG``) that still exist."""
    return [ns for ns in list_namespaces() if ns.startswith(RUN_TAG + "t")]


def _close_all() -> None:
    for topo in list(_LIVE):
        topo.close()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _close_all()
    raise SystemExit(128 + signum)


def _install_hooks() -> None:
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_close_all)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


@dataclass(eq=False)
class Host:
    """One namespace on the simulated network."""

    topo: Topology
    ns: str
    role: str
    ip: str | None = None  # address on the subnet (pods: on their node's cni0)
    node: Host | None = None  # pods: the node whose NAT fronts them

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
            **popen: Any) -> subprocess.Popen[str]:
        """Start ``argv`` inside this namespace; the topology kills it on close."""
        return self.topo.spawn(self, argv, env, **popen)

    def call(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` here to completion and capture its output.

        The output goes to files, not pipes: a process ``argv`` leaves behind (libca
        starts ``caRepeater`` when it finds one on PATH, as in an activated venv)
        keeps them open, and reading a pipe to its end would wait for it."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = self.run(argv, env, stdout=out, stderr=err)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{argv} timed out in {self.ns} after {timeout} s:\n"
                                     f"{_text(out)}\n{_text(err)}") from None
            return subprocess.CompletedProcess(list(argv), proc.returncode, _text(out),
                                               _text(err))

    def ip_cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip -n NS ...``."""
        return sh("ip", "-n", self.ns, *args, check=check)

    def exec_cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip netns exec NS ...`` (short commands such as iptables or sysctl)."""
        return sh("ip", "netns", "exec", self.ns, *args, check=check)


@dataclass(eq=False)
class Topology:
    """Bridge + node/client namespaces on one private subnet."""

    subnet: str = "10.77.0.0/24"
    pod_subnet: str = "172.31.0.0/24"
    tag: str = field(default_factory=new_tag)
    hosts: list[Host] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    closed: bool = False
    _bridge_ns: str = ""
    _ports: int = 0
    _next_host: int = 10
    _pods: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        _install_hooks()
        _LIVE.add(self)
        self._net = ipaddress.ip_network(self.subnet)
        self._bridge_ns = self._add_ns("br")
        self._bip("link", "add", "br0", "type", "bridge")
        self._bip("link", "set", "br0", "up")

    # -- construction ------------------------------------------------------------
    def _add_ns(self, role: str) -> str:
        ns = f"{self.tag}-{role}"
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def _bip(self, *args: str) -> None:
        sh("ip", "-n", self._bridge_ns, *args)

    def _attach(self, ns: str) -> str:
        """A veth pair from the bridge to ``ns`` (eth0 there) and a subnet address."""
        self._ports += 1
        port = f"p{self._ports}"
        self._bip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._bip("link", "set", port, "master", "br0", "up")
        ip = str(self._net.network_address + self._next_host)
        self._next_host += 1
        sh("ip", "-n", ns, "addr", "add", f"{ip}/{self._net.prefixlen}", "brd", "+",
           "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        return ip

    def add_node(self, name: str = "") -> Host:
        """A node (a beamline server) on the subnet."""
        return self._add_host("n", name)

    def add_client(self, name: str = "") -> Host:
        """A client machine on the subnet."""
        return self._add_host("c", name)

    def _add_host(self, kind: str, name: str) -> Host:
        count = sum(1 for h in self.hosts if h.role == kind) + 1
        ns = self._add_ns(name or f"{kind}{count}")
        host = Host(self, ns, kind)
        self.hosts.append(host)
        host.ip = self._attach(ns)
        return host

    def add_pod(self, node: Host, name: str = "") -> Host:
        """A namespace behind ``node``'s NAT, like a pod without hostNetwork.

        The node gets a ``cni0`` bridge on the private pod subnet (once) and
        forwards IP; the pod's default route points at the node. Nothing is
        forwarded from the subnet until ``forward`` adds DNAT rules.
        """
        reason = nat_available()
        if reason:
            raise RuntimeError(reason)
        pod_net = ipaddress.ip_network(self.pod_subnet)
        gateway = str(pod_net.network_address + 1)
        if node.ns not in self._pods:
            self._pods[node.ns] = 1
            node.ip_cmd("link", "add", "cni0", "type", "bridge")
            node.ip_cmd("addr", "add", f"{gateway}/{pod_net.prefixlen}", "brd", "+",
                        "dev", "cni0")
            node.ip_cmd("link", "set", "cni0", "up")
            node.exec_cmd("sysctl", "-qw", "net.ipv4.ip_forward=1")
            # Replies of DNATed connections leave with the node's address (conntrack).
            node.exec_cmd("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", str(pod_net),
                          "!", "-d", str(pod_net), "-j", "MASQUERADE")
        self._pods[node.ns] += 1
        index = self._pods[node.ns]
        count = sum(1 for h in self.hosts if h.role == "p") + 1
        ns = self._add_ns(name or f"p{count}")
        pod = Host(self, ns, "p", node=node)
        self.hosts.append(pod)
        veth = f"veth{index}"
        node.ip_cmd("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        node.ip_cmd("link", "set", veth, "master", "cni0", "up")
        pod.ip = str(pod_net.network_address + index)
        pod.ip_cmd("addr", "add", f"{pod.ip}/{pod_net.prefixlen}", "brd", "+", "dev", "eth0")
        pod.ip_cmd("link", "set", "eth0", "up")
        pod.ip_cmd("route", "add", "default", "via", gateway)
        return pod

    def forward(self, pod: Host, proto: str, node_port: int, pod_port: int) -> None:
        """DNAT ``node-ip:node_port`` to ``pod-ip:pod_port`` (unicast to the node only,
        as kube-proxy does for a NodePort/hostPort: broadcasts are not forwarded)."""
        node = pod.node
        assert node is not None and node.ip and pod.ip
        node.exec_cmd("iptables", "-t", "nat", "-A", "PREROUTING", "-d", node.ip, "-p", proto,
                      "--dport", str(node_port), "-j", "DNAT",
                      "--to-destination", f"{pod.ip}:{pod_port}")

    # -- processes ---------------------------------------------------------------
    def spawn(self, host: Host, argv: Sequence[str], env: Mapping[str, str] | None = None,
              **popen: Any) -> subprocess.Popen[str]:
        """``ip netns exec NS argv...`` (exec's, so the PID is the command's)."""
        if self.closed:
            raise RuntimeError("topology is closed")
        popen.setdefault("text", True)
        proc: subprocess.Popen[str] = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, *argv],
            env=dict(env) if env is not None else None, **popen)
        self.procs.append(proc)
        return proc

    # -- teardown ----------------------------------------------------------------
    def namespaces(self) -> list[str]:
        """Every namespace of this topology, the bridge's included."""
        return [self._bridge_ns, *(h.ns for h in self.hosts)]

    def close(self) -> None:
        """Kill our processes, delete our namespaces (veths and bridges go with them)."""
        if self.closed:
            return
        self.closed = True
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + 3
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.05, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(2)
        for ns in reversed(self.namespaces()):
            _delete_namespace(ns)
        _LIVE.discard(self)

    def leftovers(self) -> list[str]:
        """What of this topology still exists (namespaces, live processes)."""
        names = [ns for ns in list_namespaces() if ns.startswith(f"{self.tag}-")]
        names += [f"pid {p.pid}" for p in self.procs if p.poll() is None]
        return names

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_dir() -> Path:
    """The directory of this module (scripts run inside namespaces live here)."""
    return Path(__file__).resolve().parent


def _text(stream: Any) -> str:
    """All that was written to a temporary file."""
    stream.flush()
    stream.seek(0)
    return str(stream.read())
