"""PVA SharedPVs are made when a client first asks for a name (as QSRV makes its
channels): a PV no PVA client asked for costs no p4p object and no post per change.
The p4p side of the first request is in test_p4p_guard.py; every PVA integration test
goes through it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from podioc import IOC, pv
from podioc.protocols.pva.channels import make_providers


class Many(IOC):
    def __init__(self, n: int) -> None:
        super().__init__("LAZY:")
        for i in range(n):
            self.add_pv(pv.float(0.0, name=f"S{i}", writable=True))


def test_nothing_is_made_until_asked() -> None:
    async def main() -> None:
        ioc = Many(1000)
        bindings = make_providers(ioc.pvs)
        assert len(bindings) == 1000 and "LAZY:S5" in bindings and "LAZY:NOPE" not in bindings
        assert bindings.made() == 0  # membership and length make nothing
        subscribers = len(ioc.pvs["LAZY:S5"]._subscribers)
        ioc.pvs["LAZY:S5"].set(1.0)
        assert bindings.made() == 0
        shared = bindings["LAZY:S5"]
        assert bindings.made() == 1 and bindings["LAZY:S5"] is shared  # made once
        await asyncio.sleep(0)  # it opens in the loop's next turn
        assert shared.isOpen() and shared.current()["value"] == 1.0
        assert len(ioc.pvs["LAZY:S6"]._subscribers) == subscribers  # others untouched
        assert len(ioc.pvs["LAZY:S5"]._subscribers) == subscribers + 1

    asyncio.run(main())


def test_made_in_another_thread_follows_from_the_loop() -> None:
    """pvxs asks from its own thread: the SharedPV opens there with the PV's state; a
    change before the loop's next turn is posted then, and every change after."""

    async def main() -> None:
        ioc = Many(3)
        live = ioc.pvs["LAZY:S1"]
        live.set(1.5)
        bindings = make_providers(ioc.pvs)
        made: list[Any] = []
        thread = threading.Thread(target=lambda: made.append(bindings["LAZY:S1"]))
        thread.start()
        thread.join()
        shared = made[0]
        assert shared.isOpen() and shared.current()["value"] == 1.5
        live.set(2.5)  # between the request and the loop's turn: not followed yet
        assert shared.current()["value"] == 1.5
        await asyncio.sleep(0)
        assert shared.current()["value"] == 2.5
        live.set(3.5)
        assert shared.current()["value"] == 3.5

    asyncio.run(main())
