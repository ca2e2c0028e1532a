"""``podioc doctor``: can CA and PVA clients on the beamline find an IOC started here?

Run where the IOC runs (on the node, in the pod with ``kubectl exec``, in the
container). It reads the interfaces of this network namespace and the same
EPICS_* settings the IOC reads, and reports plain-language verdicts:

- OK: as a traditional beamline server would be;
- INFO: worth knowing, nothing wrong (e.g. another IOC has TCP 5064, so this
  one will take another port and clients find it by search anyway);
- WARN: works for some clients only, or more slowly;
- FAIL: clients on the beamline will not find or reach the IOC.

Nothing is sent on the network: ports are tested by binding, routes by
``connect()`` of a UDP socket (which sends nothing).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config.epicsvars import parse_yes_no, split_address_list
from ..errors import ConfigError
from ..protocols.ca.discovery import (
    Interface,
    beacon_targets,
    search_bindings,
)
from ..runtime.settings import Settings
from .hostprobes import PortUse, Probes

__all__ = ["Check", "PortUse", "Probes", "Report", "diagnose", "to_json_text"]

STATUSES = ("OK", "INFO", "WARN", "FAIL")
#: Interfaces only a Kubernetes node (or any real host) has; a pod network namespace
#: without hostNetwork shows just ``eth0`` (and maybe ``net1`` from a CNI add-on).
HOST_ONLY_IFACE = re.compile(
    r"^(cni\d*|cbr\d*|flannel\..*|cali.*|cilium_.*|lxc.*|vxlan.*|tunl\d+|docker\d+|br-.*|"
    r"kube-.*|weave.*|veth.*|virbr\d+|en[opsx].*|eno\d+|wl.*|bond\d+|team\d+|ib\d+)$")
POD_IFACE = re.compile(r"^(eth\d+|net\d+)$")
NODE_IP_VARS = ("PODIOC_NODE_IP", "NODE_IP", "HOST_IP")
POD_IP_VARS = ("PODIOC_POD_IP", "POD_IP")


@dataclass(frozen=True)
class Check:
    """One verdict."""

    status: str
    topic: str
    message: str
    hint: str = ""


@dataclass
class Report:
    """Everything doctor found."""

    hostname: str
    checks: list[Check] = field(default_factory=list)
    interfaces: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    ca: dict[str, Any] = field(default_factory=dict)
    pva: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def add(self, status: str, topic: str, message: str, hint: str = "") -> None:
        assert status in STATUSES
        self.checks.append(Check(status, topic, message, hint))

    @property
    def verdict(self) -> str:
        """The worst status of all checks."""
        worst = max((STATUSES.index(c.status) for c in self.checks), default=0)
        return STATUSES[worst]

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}

    def to_json(self) -> dict[str, Any]:
        """The stable ``--json`` document (format 1)."""
        return {"format": 1, "hostname": self.hostname, "verdict": self.verdict,
                "counts": self.counts(), "checks": [asdict(c) for c in self.checks],
                "interfaces": self.interfaces, "environment": self.environment,
                "settings": self.settings, "ca": self.ca, "pva": self.pva}

    def format_text(self) -> str:
        """Human-readable report, grouped by topic."""
        lines = [f"podioc doctor on {self.hostname}"]
        topic = None
        for check in self.checks:
            if check.topic != topic:
                topic = check.topic
                lines.append(f"\n{topic}")
            lines.append(f"  {check.status:<5} {check.message}")
            if check.hint:
                lines.append(f"        -> {check.hint}")
        counts = self.counts()
        lines.append(f"\nverdict: {self.verdict} ({counts['FAIL']} FAIL, {counts['WARN']} WARN)")
        return "\n".join(lines)


def diagnose(env: Mapping[str, str], probes: Probes | None = None,
             config_env: Mapping[str, str] | None = None, source: str = "<environment>",
             ) -> Report:
    """Check this host for what an IOC (and a client) started here with ``env`` would do.

    ``config_env`` is an instance config's ``epics:`` block; the environment
    overrides it, as in ``podioc run``.
    """
    probes = probes or Probes()
    report = Report(probes.hostname())
    ifaces = probes.interfaces()
    _check_interfaces(report, ifaces)
    _check_environment(report, env, ifaces, probes)
    merged = dict(config_env or {})
    merged.update({k: v for k, v in env.items() if k.startswith("EPICS_")})
    try:
        settings = Settings.from_env(merged, source=source)
    except ConfigError as exc:
        report.add("FAIL", "EPICS settings", str(exc), "fix the variable; the IOC will not start")
        return report
    report.settings = {k: v for k, v in asdict(settings).items() if k != "raw"}
    _check_ca_server(report, settings, ifaces, probes, env)
    _check_pva_server(report, settings, ifaces, probes)
    _check_clients(report, merged, ifaces, probes)
    return report


# -- interfaces and environment ----------------------------------------------------
def _iface_json(i: Interface) -> dict[str, Any]:
    net = i.network
    return {"name": i.name, "address": i.ip, "prefixlen": net.prefixlen if net else None,
            "broadcast": i.broadcast, "up": i.up, "loopback": i.loopback}


def _describe(i: Interface) -> str:
    net = i.network
    text = f"{i.name} {i.ip}/{net.prefixlen if net else '?'}"
    text += f", broadcast {i.broadcast}" if i.broadcast else ", no broadcast address"
    return text + ("" if i.up else " (DOWN)")


def _outside(ifaces: Sequence[Interface]) -> list[Interface]:
    return [i for i in ifaces if not i.loopback and i.up]


def _check_interfaces(report: Report, ifaces: Sequence[Interface]) -> None:
    topic = "Network interfaces"
    report.interfaces = [_iface_json(i) for i in ifaces]
    for i in ifaces:
        status = "OK" if i.up else "INFO"
        report.add(status, topic, _describe(i))
    outside = _outside(ifaces)
    if not outside:
        report.add("FAIL", topic, "only loopback: nothing outside this host can reach an IOC "
                   "here", "run the IOC with host networking (Kubernetes: hostNetwork: true; "
                   "Docker: --network host)")
    elif not any(i.broadcast for i in outside):
        report.add("FAIL", topic, "no interface has a broadcast address: clients on the "
                   "beamline subnet cannot find an IOC here by broadcast search",
                   "a /32 address is typical of a pod network; use host networking")


def _check_environment(report: Report, env: Mapping[str, str], ifaces: Sequence[Interface],
                       probes: Probes) -> None:
    topic = "Where this runs"
    names = [i.name for i in _outside(ifaces)]
    k8s = bool(env.get("KUBERNETES_SERVICE_HOST"))
    container = probes.files("/.dockerenv") or probes.files("/run/.containerenv")
    node_ip = next((env[v] for v in NODE_IP_VARS if env.get(v)), "")
    pod_ip = next((env[v] for v in POD_IP_VARS if env.get(v)), "")
    host_like = [n for n in names if HOST_ONLY_IFACE.match(n)]
    pod_like = bool(names) and all(POD_IFACE.match(n) for n in names) and len(names) <= 2
    host_network = "unknown"
    if node_ip and pod_ip:
        host_network = "yes" if node_ip == pod_ip else "no"
    elif k8s or container:
        host_network = "yes" if host_like else ("no" if pod_like or not names else "unknown")
    report.environment = {"kubernetes": k8s, "container": container,
                          "host_network": host_network, "node_ip": node_ip or None,
                          "pod_ip": pod_ip or None}
    what = "a Kubernetes pod" if k8s else ("a container" if container else "")
    if not what:
        report.add("OK", topic, "not in a container or pod (host networking by definition)")
        return
    if host_network == "yes":
        why = (f"pod IP {pod_ip} = node IP {node_ip}" if node_ip and pod_ip else
               f"the node's interfaces are visible: {', '.join(host_like[:4])}")
        report.add("OK", topic, f"{what} with host networking ({why})")
    elif host_network == "no":
        why = (f"pod IP {pod_ip} differs from node IP {node_ip}" if node_ip and pod_ip else
               f"only {', '.join(names) or 'loopback'} is visible")
        # A pod without hostNetwork is certain trouble; a container seeing one eth0
        # may also be a host-network container on a simple VM, so only warn.
        report.add("FAIL" if k8s or (node_ip and pod_ip) else "WARN", topic,
                   f"looks like {what} WITHOUT host networking ({why}): beamline clients' "
                   "broadcast searches never reach it, and behind NAT a search answer names "
                   "this namespace's ports, which lead clients to the wrong server or none; "
                   "devices that stream to a port negotiated at run time (GigE Vision "
                   "cameras: GVSP to the port the IOC just opened) never reach it, since no "
                   "port forward can exist for a port chosen at run time",
                   "Kubernetes: hostNetwork: true (podioc manifests set it); Docker: "
                   "--network host")
    else:
        report.add("WARN", topic, f"{what}; cannot tell whether it uses host networking "
                   f"(interfaces: {', '.join(names)})",
                   "set PODIOC_NODE_IP and PODIOC_POD_IP from the downward API "
                   "(status.hostIP, status.podIP) to let doctor tell")


# -- servers -----------------------------------------------------------------------
def _check_intf_list(report: Report, topic: str, var: str, addrs: Sequence[str],
                     ifaces: Sequence[Interface]) -> None:
    local = {i.ip for i in ifaces}
    for addr in addrs:
        if addr != "0.0.0.0" and addr not in local:
            report.add("FAIL", topic, f"{var} names {addr}, which is not an address of this "
                       "host: the server cannot bind it", f"use one of {', '.join(sorted(local))}")
    if addrs and all(ipaddress.IPv4Address(a).is_loopback for a in addrs if _is_ip(a)) \
            and _outside(ifaces):
        report.add("WARN", topic, f"{var}={' '.join(addrs)}: only clients on this host can "
                   "reach the IOC", f"unset {var} to serve on every interface, as beamline "
                   "servers do")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _subnets(addrs: Sequence[str], ifaces: Sequence[Interface]) -> list[Interface]:
    wildcard = not addrs or "0.0.0.0" in addrs
    return [i for i in _outside(ifaces) if i.broadcast and (wildcard or i.ip in addrs)]


def _port_check(report: Report, topic: str, what: str, addrs: Sequence[str], port: int,
                probes: Probes, fallback: str) -> bool:
    if port == 0:
        report.add("INFO", topic, f"{what} port 0: the server picks a free port; clients find "
                   "it by search")
        return True
    uses = [probes.tcp_port(a, port) for a in (addrs or ["0.0.0.0"]) if _is_ip(a)]
    taken = [u for u in uses if not u.free]
    if not taken:
        report.add("OK", topic, f"{what} port {port} is free: the IOC will serve on it")
        return True
    holders = sorted({h for u in taken for h in u.holders})
    report.add("INFO", topic, f"{what} port {port} is in use"
               + (f" by {'; '.join(holders)}" if holders else "")
               + f": the IOC will serve on {fallback}",
               "normal with several IOCs on one node; clients find each by search")
    return False


def _check_ca_server(report: Report, s: Settings, ifaces: Sequence[Interface], probes: Probes,
                     env: Mapping[str, str]) -> None:
    topic = "Channel Access server"
    addrs = list(s.ca_intf_addrs)
    _check_intf_list(report, topic, "EPICS_CAS_INTF_ADDR_LIST", addrs, ifaces)
    bindings = search_bindings(addrs, s.ca_server_port, ifaces)
    subnets = _subnets(addrs, ifaces)
    report.add("OK" if subnets else "WARN", topic,
               "searches: UDP " + ", ".join(f"{b.address}:{b.port}" for b in bindings)
               + ("; broadcast searches arrive from "
                  + ", ".join(f"{i.name} ({i.broadcast})" for i in subnets)
                  if subnets else "; no subnet's broadcast searches reach it"))
    sharers = probes.udp_sharers(s.ca_server_port)
    if sharers:
        fan = _flag(report, topic, env, "PODIOC_CA_SEARCH_FANOUT", "FAIL",
                    "set it to YES or NO before starting the IOC")
        pids = sorted({h.split(" pid ")[1].split()[0] for h in sharers if " pid " in h})
        report.add("INFO" if fan else "WARN", topic,
                   f"{len(sharers)} socket(s) of other CA servers already use UDP "
                   f"{s.ca_server_port} here" + (f" (pids {', '.join(pids)})" if pids else ""),
                   "podioc re-broadcasts unicast searches on this node so every server "
                   "answers" if fan else "PODIOC_CA_SEARCH_FANOUT=NO: a client whose address "
                   "list names this node's address finds only one of these servers")
    free = _port_check(report, topic, "CA TCP", addrs, s.ca_server_port, probes,
                       "a random free port")
    report.ca = {"intf_addrs": addrs or ["0.0.0.0"],
                 "search": [asdict(b) for b in bindings],
                 "tcp_port": s.ca_server_port, "tcp_port_free": free,
                 "udp_sharers": list(sharers)}
    targets = beacon_targets(addrs, s.ca_beacon_addrs, s.ca_auto_beacon, s.ca_beacon_port,
                             ifaces)
    report.ca["beacons"] = [asdict(t) for t in targets]
    if not targets:
        report.add("WARN", topic, "no beacons (EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO and "
                   "EPICS_CAS_BEACON_ADDR_LIST empty): clients notice a restarted IOC later",
                   "unset EPICS_CAS_AUTO_BEACON_ADDR_LIST")
        return
    reach = []
    for t in targets:
        reach.append(_beacon_reach(report, topic, t.address, t.port, t.origin, ifaces, probes))
    if not any(reach):
        report.add("FAIL", topic, "no beacon address reaches any subnet of this host",
                   "name a subnet's broadcast address in EPICS_CAS_BEACON_ADDR_LIST, or "
                   "unset it and EPICS_CAS_AUTO_BEACON_ADDR_LIST")


def _beacon_reach(report: Report, topic: str, address: str, port: int, origin: str,
                  ifaces: Sequence[Interface], probes: Probes) -> bool:
    dest = ipaddress.IPv4Address(address)
    local = [i for i in ifaces if i.network is not None and dest in i.network]
    if local:
        report.add("OK", topic, f"beacons to {address}:{port} ({origin}) reach subnet "
                   f"{local[0].network} on {local[0].name}")
        return True
    error = probes.route(address)
    if error:
        report.add("FAIL", topic, f"beacons to {address}:{port} ({origin}) cannot be sent: "
                   f"{error}", "use an address on one of this host's subnets")
        return False
    report.add("WARN", topic, f"beacons to {address}:{port} ({origin}) leave through a "
               "router: they reach that host only (routers drop broadcasts)")
    return True


def _check_pva_server(report: Report, s: Settings, ifaces: Sequence[Interface],
                      probes: Probes) -> None:
    topic = "PVAccess server"
    addrs = list(s.pva_intf_addrs)
    _check_intf_list(report, topic, "EPICS_PVAS_INTF_ADDR_LIST", addrs, ifaces)
    subnets = _subnets(addrs, ifaces)
    report.add("OK" if subnets else "WARN", topic,
               f"searches: UDP {s.pva_broadcast_port}"
               + ("; broadcast searches arrive from "
                  + ", ".join(f"{i.name} ({i.broadcast})" for i in subnets)
                  if subnets else "; no subnet's broadcast searches reach it")
               + "; unicast searches reach every PVA server on this node (pvxs fan-out)")
    free = _port_check(report, topic, "PVA TCP", addrs, s.pva_server_port, probes,
                       "another port")
    report.pva = {"intf_addrs": addrs or ["0.0.0.0"], "udp_port": s.pva_broadcast_port,
                  "tcp_port": s.pva_server_port, "tcp_port_free": free,
                  "beacons": "interface broadcasts" if s.pva_auto_beacon else "list only",
                  "beacon_addrs": list(s.pva_beacon_addrs)}
    if not s.pva_auto_beacon and not s.pva_beacon_addrs:
        report.add("WARN", topic, "no PVA beacons (EPICS_PVAS_AUTO_BEACON_ADDR_LIST=NO and "
                   "EPICS_PVAS_BEACON_ADDR_LIST empty)", "unset EPICS_PVAS_AUTO_BEACON_ADDR_LIST")


# -- clients -----------------------------------------------------------------------
def _check_clients(report: Report, env: Mapping[str, str], ifaces: Sequence[Interface],
                   probes: Probes) -> None:
    topic = "Clients started here (caget, pvget, podioc probe)"
    for proto, var in (("CA", "EPICS_CA"), ("PVA", "EPICS_PVA")):
        addrs = split_address_list(env.get(f"{var}_ADDR_LIST"))
        names = split_address_list(env.get(f"{var}_NAME_SERVERS"))
        auto = _flag(report, topic, env, f"{var}_AUTO_ADDR_LIST", "WARN",
                     "clients may read it either way; doctor assumes YES")
        if not auto and not addrs and not names:
            report.add("FAIL", topic, f"{var}_AUTO_ADDR_LIST=NO with an empty {var}_ADDR_LIST:"
                       f" a {proto} client here searches nowhere and finds nothing",
                       f"unset {var}_AUTO_ADDR_LIST or list addresses in {var}_ADDR_LIST")
            continue
        where = [i.broadcast for i in _outside(ifaces) if i.broadcast] if auto else []
        where += addrs + [f"{n} (name server)" for n in names]
        report.add("OK", topic, f"a {proto} client here searches "
                   + (", ".join(str(w) for w in where) if where else "nowhere but loopback"))
        for addr in addrs:
            host = addr.split(":")[0]
            try:
                ip = socket.gethostbyname(host)
            except OSError:
                report.add("WARN", topic, f"{var}_ADDR_LIST entry {addr} does not resolve")
                continue
            error = probes.route(ip)
            if error:
                report.add("WARN", topic, f"{var}_ADDR_LIST entry {addr} is unreachable: "
                           f"{error}")


def _flag(report: Report, topic: str, env: Mapping[str, str], name: str, status: str,
          consequence: str) -> bool:
    """A YES/NO variable (default YES); a value that is neither is reported, not guessed."""
    try:
        return parse_yes_no(name, env.get(name), True)
    except ConfigError as exc:
        report.add(status, topic, f"{name}={env[name]!r} is not YES or NO: {consequence}",
                   exc.fix)
        return True


def to_json_text(report: Report) -> str:
    """``--json`` output."""
    return json.dumps(report.to_json(), indent=2)


__all__ = ["Check", "PortUse", "Probes", "Report", "diagnose", "to_json_text"]
