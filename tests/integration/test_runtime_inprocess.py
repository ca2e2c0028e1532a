"""The runtime in the test's own process: both servers on free loopback ports, real clients.

The subprocess tests prove ``podioc run``; these drive :class:`Runtime`
directly, so a test can change the model and look at the servers' state in
the same process while real CA and PVA clients talk to them over sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
from p4p.client.thread import Context

from harness import free_ports, unique_prefix
from harness.rawca import WireClient, is_update
from harness.testiocs import ALLKINDS
from podioc.errors import PutRefused
from podioc.model import IOC
from podioc.runtime.server import GC_THRESHOLDS, Runtime
from podioc.runtime.settings import Settings


def _allkinds_class() -> type[IOC]:
    spec = importlib.util.spec_from_file_location("allkinds_inprocess", ALLKINDS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls: type[IOC] = module.AllKinds
    return cls


@pytest.fixture
def loopback_env() -> Iterator[dict[str, str]]:
    """EPICS_* server settings on free loopback ports, in os.environ (caproto reads it
    there) for the test only: the runtime adds more, all removed afterwards."""
    saved = dict(os.environ)
    ca, pva, bcast, beacon = free_ports(4)
    env = {"EPICS_CA_SERVER_PORT": str(ca), "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
           "EPICS_CAS_BEACON_ADDR_LIST": f"127.255.255.255:{beacon}",
           "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO", "EPICS_PVA_SERVER_PORT": str(pva),
           "EPICS_PVA_BROADCAST_PORT": str(bcast), "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
           "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO"}
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.asynccontextmanager
async def serving(env: dict[str, str]) -> AsyncIterator[tuple[IOC, Runtime]]:
    """An AllKinds IOC served by a Runtime in this event loop until the block ends."""
    ioc = _allkinds_class().create(unique_prefix("IP"), {})
    runtime = Runtime(ioc, Settings.from_env(env))
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(runtime.run(stop))
    ready = asyncio.ensure_future(runtime.ready.wait())
    await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises the start-up error
    assert runtime.ready.is_set(), "the runtime did not become ready in 30 s"
    try:
        yield ioc, runtime
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def _pva(env: dict[str, str]) -> Context:
    return Context("pva", useenv=False, conf={
        "EPICS_PVA_ADDR_LIST": "127.0.0.1", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_BROADCAST_PORT": env["EPICS_PVA_BROADCAST_PORT"],
        "EPICS_PVA_SERVER_PORT": env["EPICS_PVA_SERVER_PORT"]})


def test_a_pva_put_reaches_the_model_and_a_ca_monitor(loopback_env: dict[str, str]) -> None:
    async def scenario() -> None:
        async with serving(loopback_env) as (ioc, runtime):
            name = ioc.prefix + "FLOAT"
            assert runtime.endpoints.ca_port == int(loopback_env["EPICS_CA_SERVER_PORT"])
            client = await asyncio.to_thread(WireClient, runtime.endpoints.ca_port or 0)
            with client, contextlib.closing(_pva(loopback_env)) as pva:
                _, sid, _ = await asyncio.to_thread(client.connect, name)
                client.send(client.event_add(sid, 1))
                first = await asyncio.to_thread(client.wait_for, is_update(1), "first value")
                assert first.double() == 1.5
                await asyncio.to_thread(pva.put, name, 42.25, timeout=10)
                assert ioc.pvs[name].value == 42.25
                update = await asyncio.to_thread(
                    client.wait_for, lambda m: is_update(1)(m) and m.double() == 42.25,
                    "the PVA put's value on the CA monitor")
                assert update.double() == 42.25

    run(scenario)


def test_a_model_change_reaches_both_protocols_with_one_timestamp(
        loopback_env: dict[str, str]) -> None:
    async def scenario() -> None:
        async with serving(loopback_env) as (ioc, _runtime):
            name = ioc.prefix + "DRIVEN"
            pv = ioc.pvs[name]
            pv.value = 7.5  # above HIGH (5): MINOR alarm
            with contextlib.closing(_pva(loopback_env)) as pva:
                got = await asyncio.to_thread(pva.get, name, timeout=10)
            assert float(got) == 7.5
            assert got.severity == 1
            assert got.raw.timeStamp.secondsPastEpoch * 10**9 + got.raw.timeStamp.nanoseconds \
                == pv.timestamp_ns

    run(scenario)


def test_a_refused_put_changes_nothing_and_the_runtime_keeps_serving(
        loopback_env: dict[str, str]) -> None:
    async def scenario() -> None:
        async with serving(loopback_env) as (ioc, _runtime):
            name = ioc.prefix + "EVEN"
            with contextlib.closing(_pva(loopback_env)) as pva:
                with pytest.raises(Exception, match="3 is odd"):
                    await asyncio.to_thread(pva.put, name, 3, timeout=10)
                assert ioc.pvs[name].value == 2
                await asyncio.to_thread(pva.put, name, 4, timeout=10)
                assert ioc.pvs[name].value == 4
            with pytest.raises(PutRefused):
                await ioc.pvs[name].put(5)

    run(scenario)


def test_stopping_frees_the_ports(loopback_env: dict[str, str]) -> None:
    before = gc.get_threshold()
    serving_with: list[tuple[int, ...]] = []

    async def scenario() -> None:
        async with serving(loopback_env):
            serving_with.append(gc.get_threshold())

    run(scenario)
    # the collector runs less often while the IOC serves, as before afterwards
    assert serving_with == [GC_THRESHOLDS] and before != GC_THRESHOLDS
    assert gc.get_threshold() == before
    for key in ("EPICS_CA_SERVER_PORT", "EPICS_PVA_SERVER_PORT"):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", int(loopback_env[key])))  # raises if still held
