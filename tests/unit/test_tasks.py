"""A background task's failure is logged when it happens, not when it is collected."""

from __future__ import annotations

import asyncio
import logging

import pytest

from podioc.util.tasks import watch


def test_a_failing_task_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("the loop died")

    async def scenario() -> asyncio.Task[None]:
        task = watch(asyncio.get_running_loop().create_task(boom()), "monitor loop of X")
        await asyncio.wait({task})
        await asyncio.sleep(0)  # done callbacks run on the next turn
        return task

    with caplog.at_level(logging.ERROR, logger="podioc.tasks"):
        task = asyncio.run(scenario())
    assert "background task monitor loop of X failed" in caplog.text
    assert "RuntimeError: the loop died" in caplog.text
    assert task.done()


def test_a_cancelled_or_clean_task_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        clean = watch(asyncio.get_running_loop().create_task(asyncio.sleep(0)))
        slow = watch(asyncio.get_running_loop().create_task(asyncio.sleep(10)))
        await clean
        slow.cancel()
        await asyncio.wait({slow})
        await asyncio.sleep(0)

    with caplog.at_level(logging.DEBUG, logger="podioc.tasks"):
        asyncio.run(scenario())
    assert caplog.text == ""
