"""The description of an instance's PVs (``podioc describe``): every PV ``podioc run``
would serve, health PVs included, without serving anything.

PVs that ``@startup`` hooks add exist only once those hooks ran: with
``run_startup`` the hooks run (they may talk to the device), then the
shutdown hooks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._version import __version__
from ..autosave.status import add_status_pvs
from ..config import InstanceConfig
from ..errors import PodiocError
from ..model import IOC, PV
from ..runtime.health import Health
from ..runtime.iocstats import HealthSettings

#: Version of the JSON document ``podioc describe --json`` prints.
DESCRIBE_FORMAT = 1


def describe_instance(cfg: InstanceConfig, cls: type[IOC], *, run_startup: bool = False
                      ) -> dict[str, Any]:
    """A JSON-able document: instance facts, one entry per PV sorted by name, and
    the device tree (``devices``, parents first)."""
    ioc = cls.create(cfg.prefix, cfg.args, cfg.source)
    health = set()
    if cfg.health:  # as podioc run adds them: its own, then autosave's (always there)
        # SYSRESET is writable as podioc run makes it (ENGINEER... are run-time facts)
        board = Health(ioc, HealthSettings.from_config(cfg.health_block, {}),
                       access_rules=bool(cfg.access))
        add_status_pvs(board)
        health = set(board.pvs.values())
    if run_startup:
        try:
            asyncio.run(_start_and_stop(ioc))
        except Exception as exc:
            raise PodiocError(f"{cfg.source}: a startup or shutdown hook of "
                              f"{cls.__name__} failed: {type(exc).__name__}: {exc}") from exc
    pvs = []
    for name in sorted(ioc.pvs):
        live = ioc.pvs[name]
        entry = {"name": name, **live.spec.describe(), "health": live in health}
        # a health PV's value is a run-time fact (START_TOD: now), not part of the
        # description: show its declared initial value so the output is stable
        value = (PV(live.spec, name) if live in health else live).value
        entry["initial"] = value.tolist() if hasattr(value, "tolist") else value
        path = ioc.path_of(live)
        entry["path"] = None if live in health else path
        entry["device"] = None if live in health else path.rpartition(".")[0]
        pvs.append(entry)
    devices = [{"path": device.path, "class": type(device).__name__,
                "name_prefix": device.name_prefix, "number": device.number,
                "pvs": len(device.own_pvs) - (len(health) if device is ioc else 0)}
               for device in ioc.devices()]
    return {"format": DESCRIBE_FORMAT, "podioc_version": __version__,
            "ioc_class": cfg.ioc if ":" in cfg.ioc else f"{cfg.ioc}:{cls.__name__}",
            "prefix": cfg.prefix,
            "protocols": list(cfg.protocols), "pvs": pvs, "devices": devices}


async def _start_and_stop(ioc: IOC) -> None:
    """Run the startup hooks as ``podioc run`` does (parents first), then the
    shutdown hooks (sub-devices first)."""
    ioc.bind_loop(asyncio.get_running_loop())
    for device in ioc.devices():
        for method, _ in device.own_methods("startup"):
            await method()
    for device in reversed(list(ioc.devices())):
        for method, _ in device.own_methods("shutdown"):
            await method()


def format_table(doc: dict[str, Any]) -> str:
    """A human-readable table of the description."""
    rows = [("PV", "TYPE", "RW", "UNITS", "LIMITS", "DETAILS")]
    for p in doc["pvs"]:
        kind = p["kind"] + (f"[{p['max_length']}] {p['dtype']}" if p["kind"] == "array" else "")
        limits = "" if p["limits"] is None else f"{p['limits'][0]:g}..{p['limits'][1]:g}"
        details = []
        if p["choices"]:
            details.append("|".join(p["choices"]))
        if p["alarm"]:
            details.append("alarm " + " ".join(f"{k}={v:g}" for k, v in p["alarm"].items()
                                               if v is not None))
        if p["description"]:
            details.append(p["description"])
        rows.append((p["name"], kind, "rw" if p["writable"] else "r", p["units"], limits,
                     "; ".join(details)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=False)) + "  " + r[5]
             for r in rows]
    header = f"{doc['ioc_class']} prefix={doc['prefix']!r} protocols={','.join(doc['protocols'])}"
    devices = doc.get("devices", [])
    if len(devices) <= 1:
        return "\n".join([header, *lines])
    tree = ["devices:"]
    for d in devices:
        depth = d["path"].count(".") + 1 if d["path"] else 0
        label = f"{d['path']}: {d['class']}" if d["path"] else d["class"]
        count = f"{d['pvs']} PV" + ("" if d["pvs"] == 1 else "s")
        tree.append(f"{'  ' * (depth + 1)}{label}  {d['name_prefix']}*  ({count})")
    return "\n".join([header, *tree, *lines])
