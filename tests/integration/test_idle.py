"""An idle IOC sleeps: its threads wake for the health tick and the PVA guard's slow
readings, not on timers of their own (idle CPU, issue 16). On this machine each
wake-up of a sleeping thread costs about 0.2 ms of CPU, so wake-ups are the idle CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness import IocProcess, pva_client
from harness.wakeups import wait_still

IocFactory = Callable[..., IocProcess]
#: One writable float and the health PVs: no scan of its own.
QUIET_IOC = Path(__file__).resolve().parent / "iocs" / "unrestricted.py"

#: Wake-ups per second an idle IOC may have: the health tick (1/s), the PVA guard's
#: readings (4/s once still), CA beacons and the odd timer. With the guard's readings
#: every 100 ms and the CA resync loop every 0.5 s it was 13-15/s.
IDLE_WAKEUPS = 7.0


def test_idle_ioc_sleeps(ioc_factory: IocFactory) -> None:
    ioc = ioc_factory(QUIET_IOC)
    rate = wait_still(ioc.pid, IDLE_WAKEUPS)
    print(f"\nidle IOC: {rate:.1f} wake-ups/s")


def test_idle_pva_client_does_not_wake_the_ioc(ioc_factory: IocFactory) -> None:
    """A connected PVA client with a channel that does nothing: the IOC still sleeps,
    and a get afterwards is answered."""
    ioc = ioc_factory(QUIET_IOC)
    with pva_client(ioc) as client:
        assert float(client.get(ioc.pv("X"), timeout=10)) is not None
        wait_still(ioc.pid, IDLE_WAKEUPS)
        assert client.get(ioc.pv("HEARTBEAT"), timeout=10) is not None
