"""Medians, ratios, the table and the targets of a benchmark run.

A ratio ``vs X`` is "podioc is better by": >= 1.0 means podioc is at least as
good as X on that metric (times, losses: X / podioc; rates: podioc / X).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

SERVER_PROTOCOLS = {"podioc": ("ca", "pva"), "caproto": ("ca",), "p4p": ("pva",),
                    "softioc": ("ca", "pva"), "cioc": ("ca", "pva"),
                    "podioc-nopvi": ("ca", "pva")}  # startup.py only: PVI's cost
#: How a server is named in the table's ratio columns.
LABELS = {"cioc": "C IOC"}

#: metric prefixes where higher is better (all others: lower is better).
HIGHER_IS_BETTER = ("puts_per_s", "mon_", "wave_mb_s")

Target = tuple[str, bool | None, str]


def higher_better(metric: str) -> bool:
    if "_loss_" in metric or "_backlog_" in metric:
        return False
    return metric.startswith(HIGHER_IS_BETTER)


def goodness(metric: str, podioc: float | None, other: float | None) -> float | None:
    """>= 1.0 when podioc is at least as good as ``other`` on this metric."""
    if podioc is None or other is None:
        return None
    if higher_better(metric):
        return podioc / other if other else None
    if "_loss_" in metric or "_backlog_" in metric:  # near-zero values: compare with slack
        return (other + 1.0) / (podioc + 1.0) if "_loss_" in metric else (
            (other + 0.01) / (podioc + 0.01))
    return other / podioc if podioc else None


def protocol_of(metric: str) -> str | None:
    """The protocol a metric is about (None: the server as a whole)."""
    base = metric.split("@")[0]
    for protocol in ("ca", "pva"):
        if base.endswith(f"_{protocol}") or f"_{protocol}_" in base:
            return protocol
    return None


def comparable(metric: str, other: str) -> bool:
    """Ratios only where the other server serves the protocol the metric is about."""
    protocol = protocol_of(metric)
    return protocol is None or protocol in SERVER_PROTOCOLS[other]


def summarise(results: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    medians = {s: {m: statistics.median(v) for m, v in ms.items()} for s, ms in results.items()}
    metrics = sorted({m for ms in medians.values() for m in ms})
    ratios: dict[str, dict[str, float | None]] = {}
    if "podioc" in medians:
        for other in medians:
            if other == "podioc":
                continue
            ratios[other] = {m: goodness(m, medians["podioc"].get(m), medians[other].get(m))
                             for m in metrics if comparable(m, other)}
    return {"medians": medians, "ratios": ratios, "metrics": metrics}


def _every(rat: dict[str, Any], other: str, protocol: str, *, skip: Callable[[str], bool],
           ) -> Target:
    """podioc >= 1.0x ``other`` on every ``protocol`` measure and every whole-server one."""
    ratios = {m: v for m, v in rat.get(other, {}).items()
              if v is not None and protocol_of(m) in (protocol, None) and not skip(m)}
    below = sorted((v, m) for m, v in ratios.items() if v < 1.0)
    label = f"{protocol.upper()}: >= 1.0x raw {other} on every measure"
    if not ratios:
        return label, None, "not measured"
    worst = min(ratios.values())
    return label, not below, ("below 1.0: " + ", ".join(f"{m} {v:.2f}" for v, m in below)
                              if below else f"worst ratio {worst:.2f}")


def targets(summary: dict[str, Any], ns: tuple[int, ...]) -> list[Target]:
    """Issue 16's targets, each met / not met / not measured, with the figures."""
    med, rat = summary["medians"], summary["ratios"]
    pod = med.get("podioc", {})
    big = max(ns)
    out: list[Target] = []

    def paced(m: str) -> bool:  # the pace fixes these rates; the loss compares them
        return m.startswith(("mon_1000hz", "mon_5000hz")) and "_loss_" not in m

    def not_rss(m: str) -> bool:  # RSS is compared against both peers together (below)
        return paced(m) or "rss" in m

    out.append(_every(rat, "caproto", "ca", skip=not_rss))
    out.append(_every(rat, "p4p", "pva", skip=not_rss))
    for when in ("idle", "loaded"):
        metric = f"{when}_rss_mb@{big}"
        rss = {s: med.get(s, {}).get(metric) for s in ("podioc", "caproto", "p4p")}
        ok = None if None in rss.values() else (
            rss["podioc"] <= rss["caproto"] + rss["p4p"])  # type: ignore[operator]
        out.append((f"{when} RSS at {big} PVs <= caproto's + p4p's (podioc serves both)", ok,
                    ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items() if v is not None)
                    or "not measured"))
    c_ioc = rat.get("cioc", {})
    for metric, bound in (("get_p50_us_ca", 1.3), (f"connect_ca_s@{big}", 1.2),
                          (f"startup_s@{big}", 1.0), (f"idle_rss_mb@{big}", 1.2)):
        ratio = c_ioc.get(metric)  # other/podioc: podioc <= bound * C  <=>  ratio >= 1/bound
        out.append((f"{metric} <= {bound}x the C IOC's", None if ratio is None
                    else ratio >= 1.0 / bound - 1e-9,
                    "not measured" if ratio is None else
                    f"podioc {pod.get(metric, 0):.3g} = {1 / ratio:.2f}x the C IOC's"))
    cpu = pod.get(f"idle_cpu_pct@{big}")
    out.append((f"idle CPU < 0.2 % at {big} PVs", None if cpu is None else cpu < 0.2,
                "not measured" if cpu is None else f"{cpu:.2f} %"))
    for metric, bound in (("catime_total_s_ca", 5.0), ("acctst_first_s_ca", 3.0)):
        keys = [k for k in c_ioc if k.startswith(metric)]
        ratio = c_ioc.get(keys[0]) if keys else None
        out.append((f"{metric} <= {bound}x the C IOC's", None if ratio is None
                    else ratio >= 1.0 / bound, "not measured" if ratio is None else
                    f"{1 / ratio:.1f}x the C IOC's"))
    loss = pod.get("mon_flood_loss_pct_ca")
    lag = pod.get("mon_flood_backlog_s_ca")
    out.append(("CA flood: no value lost, the newest promptly (backlog < 0.5 s)",
                None if loss is None or lag is None else loss == 0.0 and lag < 0.5,
                "not measured" if loss is None or lag is None
                else f"loss {loss:.2f} %, backlog {lag:.3f} s"))
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def table(summary: dict[str, Any], servers: list[str]) -> str:
    others = [s for s in servers if s != "podioc" and s in summary["ratios"]]
    head = ["metric", *servers, *[f"vs {LABELS.get(o, o)}" for o in others]]
    rows = [head]
    for metric in summary["metrics"]:
        row = [metric, *[fmt(summary["medians"].get(s, {}).get(metric)) for s in servers]]
        row += [fmt(summary["ratios"][o].get(metric)) if metric in summary["ratios"][o]
                else "" for o in others]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
