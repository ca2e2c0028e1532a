"""CA beacons: announce the server to each target, fast at first, then every
``EPICS_CAS_BEACON_PERIOD`` seconds (as rsrv and caproto do)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

import caproto as ca

from ..wire import MINOR_VERSION
from .plans import BeaconTarget

log = logging.getLogger(__name__)


async def send_beacons(ctx: Any, targets: Sequence[BeaconTarget],
                       sleep: Callable[[float], Any] = asyncio.sleep) -> None:
    """Send beacons for the caproto context ``ctx`` (its port, count and environment)
    until cancelled; each failing target is logged once until it works again."""
    if not targets:
        log.warning("CA beacons are off: EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO and "
                    "EPICS_CAS_BEACON_ADDR_LIST is empty")
        return
    log.info("CA beacons to %s", ", ".join(f"{t.address}:{t.port}" for t in targets))
    period_max = float(ctx.environ.get("EPICS_CAS_BEACON_PERIOD") or 15.0)
    period = 0.02
    failed: set[tuple[str, int]] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        while True:
            for target in targets:
                beacon = ca.Beacon(MINOR_VERSION, ctx.port, ctx.beacon_count, target.announce)
                key = (target.address, target.port)
                try:
                    sock.sendto(bytes(beacon), key)
                    failed.discard(key)
                except OSError as exc:
                    if key not in failed:
                        failed.add(key)
                        log.warning("CA beacon to %s:%d failed: %s", *key, exc)
            ctx.beacon_count += 1
            period = min(period_max, period * 2)
            await sleep(period)
