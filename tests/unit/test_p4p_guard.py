"""The p4p internals in podioc.protocols.pva.guard still behave: a LoopSharedPV made in
pvxs's thread (no event loop there) serves gets and takes puts through its asyncio
handler, in the loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from p4p.client.thread import Context
from p4p.nt import NTScalar
from p4p.server import DynamicProvider, Server

from harness import free_ports
from podioc.protocols.pva.guard import LoopSharedPV


class _Handler:
    def __init__(self) -> None:
        self.puts: list[tuple[float, str]] = []

    async def put(self, shared: Any, op: Any) -> None:
        value = float(op.value())
        self.puts.append((value, threading.current_thread().name))
        shared.post(value)
        op.done()


def test_loop_shared_pv_made_in_pvxs_thread() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler()
        made: dict[str, Any] = {}
        asked = asyncio.Event()

        class Channels:
            def testChannel(self, name: str) -> bool:
                return name == "GUARD:X"

            def makeChannel(self, name: str, peer: str) -> Any:
                if name not in made:
                    made[name] = LoopSharedPV(loop, handler=handler, nt=NTScalar("d"),
                                              initial=4.5)
                    made["thread"] = threading.current_thread() is not threading.main_thread()
                    loop.call_soon_threadsafe(asked.set)
                return made[name]

        tcp, udp = free_ports(2)
        provider = DynamicProvider("guard-test", Channels())  # p4p holds it weakly
        server = Server(providers=[provider], useenv=False,
                        conf={"EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
                              "EPICS_PVAS_SERVER_PORT": str(tcp),
                              "EPICS_PVAS_BROADCAST_PORT": str(udp),
                              "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
                              "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO"})
        conf = {"EPICS_PVA_ADDR_LIST": f"127.0.0.1:{udp}", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
                "EPICS_PVA_BROADCAST_PORT": str(udp), "EPICS_PVA_SERVER_PORT": str(tcp)}
        try:
            with Context("pva", conf=conf, useenv=False) as ctx:
                first = loop.run_in_executor(None, lambda: float(ctx.get("GUARD:X", timeout=10)))
                await asyncio.wait_for(asked.wait(), 10)
                assert made["thread"], "makeChannel ran in the event loop's thread"
                assert await first == 4.5
                await loop.run_in_executor(None, lambda: ctx.put("GUARD:X", 7.0, timeout=10))
                assert handler.puts == [(7.0, threading.current_thread().name)]
                assert await loop.run_in_executor(
                    None, lambda: float(ctx.get("GUARD:X", timeout=10))) == 7.0
        finally:
            server.stop()

    asyncio.run(main())
