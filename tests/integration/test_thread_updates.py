"""A PV set from a plain thread reaches CA and PVA monitors alike.

The thread of ``iocs/thread_setter.py`` sets COUNT when the test puts REQUEST;
a pyepics (libca) monitor and a p4p monitor, both subscribed before, must each
get the update, with the same value and timestamp (to the ns). READBACK shows
that the thread read its own write back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from harness import IocProcess, MonitorQueue, PyepicsClient, poll_until, pva_client

THREAD_SETTER = Path(__file__).resolve().parent / "iocs" / "thread_setter.py"


def has_value(expected: int, value: Any) -> bool:
    """True when the raw p4p ``value`` holds ``expected``."""
    return bool(value["value"] == expected)


def reads(pva: Any, name: str, expected: int) -> bool:
    """True when a PVA get of ``name`` returns ``expected``."""
    return has_value(expected, pva.get(name))


def test_value_set_by_a_thread_reaches_ca_and_pva_monitors(
        module_ioc_factory: Callable[..., IocProcess]) -> None:
    ioc = module_ioc_factory(THREAD_SETTER, name="thread-setter")
    with PyepicsClient(ioc) as ca, pva_client(ioc, nt=False) as pva:
        ca_sub = ca.subscribe(ioc.pv("COUNT"))
        queue = MonitorQueue()
        pva_sub = pva.monitor(ioc.pv("COUNT"), queue, notify_disconnect=False)
        try:
            queue.wait_count(1)
            for count, n in enumerate((11, 12, 13), start=2):  # the first update is 0
                pva.put(ioc.pv("REQUEST"), n)
                pva_seen = queue.wait_for(partial(has_value, n))
                ca_seen = ca.updates(ca_sub, count)[count - 1]
                assert ca_seen["value"] == n
                assert (ca_seen["posixseconds"], ca_seen["nanoseconds"]) == (
                    pva_seen["timeStamp.secondsPastEpoch"], pva_seen["timeStamp.nanoseconds"])
                poll_until(partial(reads, pva, ioc.pv("READBACK"), n),
                           message=f"READBACK == {n}")
        finally:
            pva_sub.close()
