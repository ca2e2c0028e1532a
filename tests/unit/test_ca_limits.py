"""CA resource limits are computed from the whole PV table, not the channels made so far."""

from __future__ import annotations

import asyncio

from podioc import IOC, pv
from podioc.limits.resources import Limits
from podioc.protocols.ca import ServerContext, make_pvdb
from podioc.protocols.ca.limits import CLIENT_OBJECTS, CircuitLimits, oversized


def _many(count: int) -> IOC:
    ioc = IOC("MANY:")
    for i in range(count):
        ioc.add_pv(pv.float(0.0, name=f"P{i}"), f"p{i}")
    return ioc


def test_a_20000_pv_ioc_lets_each_client_hold_four_objects_per_pv() -> None:
    ioc = _many(20_000)

    async def limits() -> CircuitLimits:
        # Inside a running loop the pvdb starts empty and fills in the background:
        # the cap must not be computed from what it holds at that moment.
        pvdb = make_pvdb(ioc.pvs)
        ctx = ServerContext(pvdb, ["127.0.0.1"], pvs=ioc.pvs.values(), limits=Limits())
        assert len(pvdb) < len(ioc.pvs)
        pvdb.filling.cancel()  # type: ignore[attr-defined]
        return ctx.circuit_limits

    assert asyncio.run(limits()).max_objects == 80_000


def test_a_small_ioc_keeps_the_default_object_cap() -> None:
    assert CircuitLimits.for_pvs(Limits(), _many(10).pvs.values()).max_objects == CLIENT_OBJECTS


def test_a_message_still_arriving_is_refused_by_its_declared_size() -> None:
    header = bytes.fromhex("0004 ffff 0006 0000 00000001 00000002") + (10**6).to_bytes(4, "big") \
        + (1).to_bytes(4, "big")
    assert "1000000-byte message" in oversized(header, 16384)
    assert oversized(header[:20], 16384) == ""  # extended size not yet known
    assert oversized(header, 2 * 10**6) == ""
