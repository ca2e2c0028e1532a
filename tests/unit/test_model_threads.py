"""Changes from threads other than the IOC's event loop (podioc.model.threads).

Once an IOC is bound to its loop (the runtime does it before the startup
hooks), ``set``/``.value =``/``set_alarm`` from another thread run on the loop
thread, so subscribers (the protocol adapters, autosave) only ever run there,
and the calling thread waits until the change is applied.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from podioc import IOC, PutRefused, Severity, Status, pv


class Device(IOC):
    reading = pv.float(0.0, alarm=pv.Alarm(high=5.0))
    label = pv.string("idle")

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self.seen: list[tuple[str, Any, int]] = []  # (pv, value, thread id of the subscriber)
        for live in self:
            self.watch(live)

    def watch(self, live: Any) -> None:
        live.subscribe(lambda p: self.seen.append((p.name, p.value, threading.get_ident())))


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new plain thread; its result, or its exception re-raised."""
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the thread did not finish within 30 s"
    if "error" in out:
        raise out["error"]
    return out.get("result")


async def drain() -> None:
    """Return once every callback queued on the running loop so far has run."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


def test_set_from_a_thread_is_applied_on_the_loop_thread_before_it_returns() -> None:
    ioc = Device("T:")

    async def main() -> tuple[int, Any]:
        ioc.bind_loop(asyncio.get_running_loop())

        def from_thread() -> Any:
            ioc.reading.value = 7.0
            ioc.label.set("busy")
            return ioc.reading.value, ioc.reading.alarm.severity, ioc.label.value

        return threading.get_ident(), await asyncio.to_thread(from_thread)

    loop_thread, read_back = asyncio.run(main())
    assert read_back == (7.0, Severity.MINOR, "busy")  # the thread reads its own writes
    assert ioc.seen == [("T:READING", 7.0, loop_thread), ("T:LABEL", "busy", loop_thread)]


def test_set_alarm_from_a_thread_runs_on_the_loop_thread() -> None:
    ioc = Device()

    async def main() -> int:
        ioc.bind_loop(asyncio.get_running_loop())
        await asyncio.to_thread(ioc.label.set_alarm, Severity.INVALID, Status.COMM, "lost")
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert ioc.label.alarm.severity is Severity.INVALID and ioc.label.alarm.message == "lost"
    assert ioc.seen == [("LABEL", "idle", loop_thread)]


def test_pv_added_after_binding_is_bound_too() -> None:
    ioc = Device()

    async def main() -> int:
        ioc.bind_loop(asyncio.get_running_loop())
        extra = ioc.add_pv(pv.int(0, name="EXTRA"))
        ioc.watch(extra)
        await asyncio.to_thread(extra.set, 3)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert ioc.seen == [("EXTRA", 3, loop_thread)]


def test_a_wrong_value_from_a_thread_is_refused_in_that_thread() -> None:
    ioc = Device()

    async def main() -> None:
        ioc.bind_loop(asyncio.get_running_loop())
        with pytest.raises(PutRefused):
            await asyncio.to_thread(ioc.reading.set, "not a number")  # type: ignore[arg-type]

    asyncio.run(main())
    assert ioc.reading.value == 0.0 and ioc.seen == []


def test_set_times_out_when_the_loop_does_not_run_it_and_changes_nothing() -> None:
    ioc = Device()
    errors: list[BaseException] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ioc.bind_loop(loop, timeout=0.2)
        released = threading.Event()

        def from_thread() -> None:
            try:
                ioc.reading.value = 9.0
            except BaseException as exc:
                errors.append(exc)
            released.set()

        thread = threading.Thread(target=from_thread)
        thread.start()
        assert released.wait(timeout=30)  # blocks the loop: the set cannot be applied
        thread.join(timeout=30)
        await drain()  # the abandoned change, queued before, has now had its turn

    asyncio.run(main())
    assert len(errors) == 1 and isinstance(errors[0], TimeoutError)
    message = str(errors[0])
    assert "READING" in message and "0.2 s" in message and "unchanged" in message
    assert "asyncio.to_thread" in message
    assert ioc.reading.value == 0.0 and ioc.seen == []


def test_set_from_a_thread_after_the_loop_stopped_says_so() -> None:
    ioc = Device()

    async def main() -> None:
        ioc.bind_loop(asyncio.get_running_loop())

    asyncio.run(main())
    with pytest.raises(RuntimeError, match=r"READING: set from thread .* event loop is not "
                                           r"running.*@shutdown"):
        in_thread(lambda: ioc.reading.set(1.0))
    assert ioc.reading.value == 0.0 and ioc.seen == []


def test_the_loop_thread_itself_and_an_unbound_ioc_set_directly() -> None:
    ioc = Device()
    in_thread(lambda: ioc.reading.set(1.0))  # not bound: no loop to go to
    assert [value for _, value, _ in ioc.seen] == [1.0]

    async def main() -> None:
        ioc.bind_loop(asyncio.get_running_loop())
        ioc.reading.value = 2.0  # on the loop thread: applied at once
        assert ioc.reading.value == 2.0 and len(ioc.seen) == 2

    asyncio.run(main())
