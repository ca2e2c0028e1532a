"""run_scan: a device error is one log line per streak, other errors keep their traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from harness.aio import until
from podioc.errors import DeviceNotConnected
from podioc.runtime.scans import run_scan


def test_device_errors_are_logged_once_per_streak(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def poll() -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise DeviceNotConnected("psu: device not connected: connection refused")
        if calls == 7:
            raise ValueError("a bug")

    async def main() -> None:
        task = asyncio.ensure_future(run_scan("poll", poll, 0.001))
        await until(lambda: calls >= 8, message="8 runs")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="podioc.runtime.scans"):
        asyncio.run(main())
    lines = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines[:2] == [
        (logging.WARNING, "scan poll: psu: device not connected: connection refused", False),
        (logging.INFO, "scan poll works again after 5 device errors", False)]
    assert lines[2][0] == logging.ERROR and lines[2][2]  # a bug keeps its traceback
    assert len(lines) == 3
