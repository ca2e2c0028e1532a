"""PVI over PVA: one structure PV per group of PVs that lists its signals and sub-groups.

The layout is the one FastCS serves and ophyd-async's ``PviDeviceConnector``
reads (``ophyd_async.epics.core``)::

    structure
        alarm_t alarm
        time_t timeStamp
        structure display
            string description
        structure value
            structure temperature       # a read-only PV
                string r    DEMO:TEMPERATURE
            structure setpoint          # a writable PV
                string rw   DEMO:SETPOINT
            structure ch                # a sub-group: its own PVI PV
                string d    DEMO:CH:PVI

A vector's PVI PV lists its members as ``__1``, ``__2``, ... each with ``d``.
Groups come from :func:`podioc.model.grouping.group_pvs`. The PVs are served
only over PVA (CA has no structures). Each PVI PV is built when its first
client connects (in a worker thread), so an IOC nobody browses pays only for
the grouping (~20 ms at 10,000 PVs; benchmarks/startup.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from p4p import Type, Value
from p4p.nt.common import alarm as alarm_t
from p4p.nt.common import timeStamp as time_t
from p4p.server.asyncio import SharedPV

from ...errors import ConfigError
from ...model.grouping import Group, group_pvs
from ...model.state import PV

log = logging.getLogger(__name__)


def entries(group: Group, suffix: str) -> dict[str, dict[str, str]]:
    """The ``value`` field of a group's PVI PV: entry name -> {role: PV name}."""
    out: dict[str, dict[str, str]] = {}
    for n, member in group.vector.items():
        out[f"__{n}"] = {"d": member.pv_prefix + suffix}
    for entry, child in group.groups.items():
        out[entry] = {"d": child.pv_prefix + suffix}
    for entry, signal in group.signals.items():
        out[entry] = {"rw" if signal.writable else "r": signal.pv}
    return out


def pvi_value(group: Group, suffix: str, description: str) -> Value:
    """The full Value of a group's PVI PV."""
    value = entries(group, suffix)
    fields = [(entry, ("S", "structure", [(role, "s") for role in roles]))
              for entry, roles in value.items()]
    kind = Type([("alarm", alarm_t), ("timeStamp", time_t),
                 ("display", ("S", None, [("description", "s")])),
                 ("value", ("S", "structure", fields))])
    sec, ns = divmod(time.time_ns(), 1_000_000_000)
    return Value(kind, {"alarm": {"severity": 0, "status": 0, "message": ""},
                        "timeStamp": {"secondsPastEpoch": sec, "nanoseconds": ns},
                        "display": {"description": description}, "value": value})


class _LazyPVI:
    """Opens the SharedPV with its Value when the first client connects; refuses puts.

    Building and opening run in a worker thread: for a 10,000-PV group pvxs takes
    ~2 s to open the structure, mostly without the GIL, so the IOC's loop (scans,
    CA, other PVA clients) keeps going meanwhile. Clients wait until it is open.
    """

    def __init__(self, name: str, build: Callable[[], Value]) -> None:
        self.name = name
        self.build = build
        self.opening = False

    async def onFirstConnect(self, pv: SharedPV) -> None:
        if pv.isOpen() or self.opening:
            return
        self.opening = True
        try:
            await asyncio.to_thread(self._open, pv)
        except Exception:
            log.exception("PVI %s could not be built", self.name)
        finally:
            self.opening = False

    def _open(self, pv: SharedPV) -> None:
        started = time.perf_counter()
        value = self.build()
        built = time.perf_counter()
        pv.open(value)
        log.info("PVI %s: built in %.3f s, opened in %.3f s", self.name, built - started,
                 time.perf_counter() - built)

    def put(self, pv: SharedPV, op: Any) -> None:
        op.done(error=f"{self.name} is read-only: it lists this IOC's PVs (PVI)")


def make_pvi(prefix: str, pvs: dict[str, PV], suffix: str,
             description: str = "") -> dict[str, SharedPV]:
    """PVI PV name -> SharedPV, one per group; must be called inside the running loop.

    Raises :class:`ConfigError` when a PVI PV name is taken by one of the IOC's PVs.
    """
    root = group_pvs(prefix, pvs, lambda name: bool(pvs[name].spec.writable))
    out: dict[str, SharedPV] = {}
    for group in root.walk():
        name = group.pv_prefix + suffix
        if name in pvs:
            raise ConfigError("<instance config>", "pvi.name",
                              f"the PVI PV {name} has the name of one of the IOC's PVs",
                              "set pvi: {name: ...} to another name, or pvi: {enabled: false}")
        text = description if group is root else f"{description} {group.pv_prefix}".strip()

        def build(group: Group = group, text: str = text) -> Value:
            return pvi_value(group, suffix, text)

        out[name] = SharedPV(handler=_LazyPVI(name, build))
    log.debug("PVI: %d PVs under %s%s", len(out), prefix, suffix)
    return out
