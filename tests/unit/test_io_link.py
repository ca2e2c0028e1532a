"""DeviceLink on the model alone: a scripted Connection, no sockets, no servers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from harness.aio import until
from podioc import IOC, PutRefused, Severity, Status, pv
from podioc.errors import DeviceError, DeviceNotConnected
from podioc.io import Backoff, Connection, DeviceLink


class ScriptedConnection(Connection):
    """Opens when ``reachable`` is set; ``lose(reason)`` breaks the link."""

    def __init__(self) -> None:
        super().__init__("dev", "scripted", backoff=Backoff(initial=0.01, maximum=0.05))
        self.reachable = False
        self.opened = 0

    async def _open(self) -> None:
        if not self.reachable:
            raise ConnectionRefusedError(111, "Connection refused")
        self.opened += 1

    def lose(self, reason: str) -> None:
        self.reachable = False
        self._lost_link(reason)


class Device(IOC):
    value = pv.float(0.0, writable=True, limits=(-10.0, 10.0))
    other = pv.float(0.0)
    connected = pv.bool(False, states=("NO", "YES"))


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def make(refresh: Any = None) -> tuple[Device, ScriptedConnection, DeviceLink]:
    ioc = Device("T:")
    conn = ScriptedConnection()
    link = DeviceLink(conn, [ioc.value, ioc.other], connected=ioc.connected, refresh=refresh)
    return ioc, conn, link


def test_pvs_are_in_comm_alarm_until_the_first_connection() -> None:
    ioc, _, link = make()
    for live in (ioc.value, ioc.other):
        assert (live.alarm.severity, live.alarm.status) == (Severity.INVALID, Status.COMM)
        assert live.alarm.message == "device not connected: not started"
    assert ioc.connected.alarm.severity == Severity.NO_ALARM
    assert not link.ready and ioc.connected.value is False


def test_puts_refused_while_down_pass_once_up_and_refused_again_after_loss() -> None:
    async def main() -> None:
        ioc, conn, link = make()
        async with conn:
            await until(lambda: conn.reason == "connection refused", message="refused")
            with pytest.raises(PutRefused, match=r"T:VALUE: device not connected: dev: "
                                                 r"connection refused"):
                await ioc.value.put(1.0)
            assert ioc.value.value == 0.0
            conn.reachable = True
            await until(lambda: link.ready, message="link ready")
            await ioc.value.put(2.0)
            assert ioc.value.value == 2.0 and ioc.connected.value is True
            assert ioc.value.alarm.severity == Severity.NO_ALARM
            conn.lose("cable pulled")
            assert not link.ready  # at once; the alarms follow on the next loop iteration
            await until(lambda: ioc.value.alarm.message == "device not connected: cable pulled",
                        message="alarm")
            with pytest.raises(PutRefused, match="device not connected: dev: cable pulled"):
                await ioc.value.put(3.0)
            assert ioc.value.value == 2.0 and ioc.connected.value is False
            with pytest.raises(PutRefused, match="outside the limits"):  # limits come first
                await ioc.value.put(11.0)

    run(main())


def test_refresh_runs_before_the_alarms_clear() -> None:
    seen: list[Severity] = []

    async def main() -> None:
        ioc: Device

        async def refresh() -> None:
            seen.append(ioc.value.alarm.severity)  # still in alarm while re-reading
            ioc.value.value = 5.0

        ioc, conn, link = make(refresh)
        conn.reachable = True
        async with conn:
            await until(lambda: link.ready, message="link ready")
            assert ioc.value.value == 5.0 and ioc.value.alarm.severity == Severity.NO_ALARM
            conn.lose("gone")
            conn.reachable = True
            await until(lambda: link.ready and conn.connections == 2, message="ready again")

    run(main())
    assert seen == [Severity.INVALID, Severity.INVALID]


@pytest.mark.parametrize("error", [DeviceNotConnected("lost during refresh"),
                                   RuntimeError("bug in refresh")])
def test_failed_refresh_keeps_the_alarm_and_retries(error: Exception) -> None:
    calls = 0

    async def refresh() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise error

    async def main() -> None:
        ioc, conn, link = make(refresh)
        conn.reachable = True
        async with conn:
            await until(lambda: calls >= 1, message="first refresh")
            assert ioc.value.alarm.severity == Severity.INVALID
            await until(lambda: link.ready, message="ready after a retry")
            assert calls == 2 and conn.connections == 2

    run(main())
    assert isinstance(error, DeviceError | RuntimeError)


def test_wait_connected_times_out_with_the_reason() -> None:
    async def main() -> None:
        _, conn, _ = make()
        async with conn:
            with pytest.raises(DeviceNotConnected, match=r"device not connected \(waited 0.1 s\)"):
                await conn.wait_connected(0.1)

    run(main())
