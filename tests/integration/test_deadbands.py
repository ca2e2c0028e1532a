"""Monitor deadbands (``deadband=``/``archive_deadband=``, an ai's MDEL/ADEL) over
CA: a value (DBE_VALUE) monitor gets a change only when it moves the value by
more than the deadband from the last value it got, a log (DBE_LOG, archiver)
monitor likewise with the archive deadband; ``.MDEL`` reads and sets it."""

from __future__ import annotations

import queue
from typing import Any

import pytest
from caproto import SubscriptionType

from harness import IocProcess, ca_pv, caproto_client
from harness.epicsbase import epics_base
from harness.testiocs import TESTS

IOC = f"{TESTS / 'integration' / 'iocs' / 'clamped.py'}:Deadbands"


@pytest.fixture(scope="module")
def deadbands(module_ioc_factory: Any) -> IocProcess:
    return module_ioc_factory(IOC, name="deadbands")  # type: ignore[no-any-return]


def monitored(ioc: IocProcess, name: str, puts: list[float],
              last: float) -> dict[str, list[float]]:
    """Values a DBE_VALUE and a DBE_LOG subscriber got while ``puts`` were written
    (until each got ``last``, the final put)."""
    got: dict[str, queue.Queue[float]] = {"value": queue.Queue(), "log": queue.Queue()}
    with caproto_client(ioc) as ctx:
        chan = ca_pv(ctx, ioc.pv(name))
        keep = []
        for key, mask in (("value", SubscriptionType.DBE_VALUE),
                          ("log", SubscriptionType.DBE_LOG)):
            sub = chan.subscribe(mask=mask)

            def seen(_sub: Any, response: Any, into: queue.Queue[float] = got[key]) -> None:
                into.put(float(response.data[0]))

            sub.add_callback(seen)  # caproto holds callbacks weakly: keep them
            keep.append((sub, seen))
        firsts = {key: q.get(timeout=10) for key, q in got.items()}
        for value in puts:
            chan.write([value], wait=True, timeout=10)
        out = {}
        for key, q in got.items():
            values = [firsts[key]]
            while values[-1] != last:
                values.append(q.get(timeout=10))
            out[key] = values
        for sub, _ in keep:
            sub.clear()
    return out


def test_value_and_log_monitors_honour_their_deadbands(deadbands: IocProcess) -> None:
    got = monitored(deadbands, "LEVEL", [0.5, 1.5, 2.0, 3.0, 6.0], last=6.0)
    assert got == {"value": [0.0, 1.5, 3.0, 6.0], "log": [0.0, 6.0]}


def test_without_deadbands_every_change_is_posted(deadbands: IocProcess) -> None:
    got = monitored(deadbands, "PLAIN", [1, 2, 3], last=3)
    assert got == {"value": [0, 1, 2, 3], "log": [0, 1, 2, 3]}


def test_mdel_field_reads_and_sets_the_deadband(deadbands: IocProcess) -> None:
    base = epics_base()
    got = base.run("caget", "-t", deadbands.pv("LEVEL.MDEL"), deadbands.pv("PLAIN.MDEL"),
                   target=deadbands)
    assert got.stdout.split() == ["1", "-1"], got.output
    for field in ("MDEL", "ADEL"):
        assert base.run("caput", "-c", "-w", "5", deadbands.pv(f"LEVEL.{field}"), "-1",
                        target=deadbands).returncode == 0
    got2 = monitored(deadbands, "LEVEL", [6.1, 6.2], last=6.2)
    assert got2["value"][1:] == got2["log"][1:] == [6.1, 6.2]  # after each first value
