"""Is an IOC process ready? Asked the way clients ask, not read from its log."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import psutil

from .rawca import WireClient

if TYPE_CHECKING:
    from .ioc_process import IocProcess


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process ``pid`` listens on."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}


def probe_ready(ioc: IocProcess, timeout: float = 1.0) -> bool:
    """True once a CA client can create a channel to the IOC's HEARTBEAT PV and a PVA
    client can read it (the same PV ``podioc probe --ready`` reads). Without a known
    prefix (the config's own), a CA client that connects is enough."""
    name = ioc.pv("HEARTBEAT")
    try:
        with WireClient(ioc.ca_port, timeout=timeout) as client:
            if not ioc.use_prefix:
                return True
            client.connect(name)
    except (OSError, AssertionError):
        return False
    from p4p.client.thread import Context

    with contextlib.closing(Context("pva", conf=ioc.pva_conf(), useenv=False)) as ctx:
        try:
            ctx.get(name, timeout=timeout)
        except Exception:
            return False
    return True
