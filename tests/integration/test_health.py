"""Health PVs: present on both protocols, HEARTBEAT advances, client counts are right.

The iocStats names' types and values: ``test_iocstats.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import podioc
from harness import IocProcess, PyepicsClient, ca_pv, caproto_client, poll_until, pva_client
from harness.testiocs import ALLKINDS

IocFactory = Callable[..., IocProcess]

HEALTH = ["HEARTBEAT", "UPTIME", "UPTIME_S", "START_TOD", "VERSION", "PV_COUNT",
          "CA_CLIENTS", "PVA_CLIENTS", "PVA_CHANNELS", "RSS", "CA_CLNT_CNT", "CA_CONN_CNT"]


def test_health_pvs_on_both_protocols(allkinds: IocProcess, pyepics: PyepicsClient,
                                      pva: Any) -> None:
    for name in HEALTH:
        ca_value = pyepics.get(allkinds.pv(name))["value"]
        pva_value = pva.get(allkinds.pv(name), timeout=10)
        assert ca_value is not None and pva_value is not None, name
    assert pyepics.get(allkinds.pv("VERSION"))["value"] == f"podioc {podioc.__version__}"
    assert int(pva.get(allkinds.pv("PV_COUNT"), timeout=10)) == allkinds.pv_count
    assert float(pva.get(allkinds.pv("RSS"), timeout=10)) > 10  # MiB
    start = pva.get(allkinds.pv("START_TOD"), timeout=10).raw["value"]
    assert len(start) == 19 and start[4] == "-" and start[13] == ":"  # YYYY-mm-dd HH:MM:SS
    units = pyepics.get(allkinds.pv("UPTIME_S"), ctrl=True)["ctrl"]["units"]
    assert units == "s"


def test_health_pvs_are_read_only(allkinds: IocProcess, pyepics: PyepicsClient) -> None:
    for name in HEALTH:
        assert pyepics.info(allkinds.pv(name))["write_access"] is False, name


def test_heartbeat_and_uptime_advance(allkinds: IocProcess, pyepics: PyepicsClient,
                                      pva: Any) -> None:
    first = pyepics.get(allkinds.pv("HEARTBEAT"))["value"]
    poll_until(lambda: pyepics.get(allkinds.pv("HEARTBEAT"))["value"] >= first + 2,
               timeout=15, message="HEARTBEAT advances by 2")
    sub = pyepics.subscribe(allkinds.pv("HEARTBEAT"))
    beats = [u["value"] for u in pyepics.updates(sub, 3, timeout=15)]
    assert beats == sorted(set(beats))  # every update a new, higher count
    pyepics.call("unsubscribe", id=sub)
    uptime = float(pva.get(allkinds.pv("UPTIME_S"), timeout=10))
    poll_until(lambda: float(pva.get(allkinds.pv("UPTIME_S"), timeout=10)) > uptime,
               timeout=15, message="UPTIME_S advances")


def test_client_counts(ioc_factory: IocFactory) -> None:
    """CA_CLIENTS (= iocStats' CA_CLNT_CNT), CA_CONN_CNT (CA channels), PVA_CLIENTS and
    PVA_CHANNELS count connected clients and their channels (updated once a second)."""
    ioc = ioc_factory(ALLKINDS)
    names = ["CA_CLIENTS", "CA_CLNT_CNT", "CA_CONN_CNT", "PVA_CLIENTS", "PVA_CHANNELS"]
    with pva_client(ioc) as observer:  # one PVA client: the observer itself

        def counts() -> list[int]:
            return [int(observer.get(ioc.pv(name), timeout=10)) for name in names]

        def expect(ca: int, ca_channels: int, pva: int, pva_channels: int) -> None:
            want = [ca, ca, ca_channels, pva, pva_channels]
            poll_until(lambda: counts() == want, timeout=15,
                       message=f"{', '.join(names)} == {want}")

        # the observer's own channels: the five count PVs
        expect(0, 0, 1, 5)
        with caproto_client(ioc) as ca:
            ca_pv(ca, ioc.pv("FLOAT"))
            ca_pv(ca, ioc.pv("INT"))
            expect(1, 2, 1, 5)
            with PyepicsClient(ioc) as pyepics:
                pyepics.get(ioc.pv("FLOAT"))
                expect(2, 3, 1, 5)
                with pva_client(ioc) as second:
                    second.get(ioc.pv("FLOAT"), timeout=10)
                    expect(2, 3, 2, 6)
                expect(2, 3, 1, 5)
            expect(1, 2, 1, 5)
        expect(0, 0, 1, 5)
