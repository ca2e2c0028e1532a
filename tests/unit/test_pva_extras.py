"""IOC.pva_extras: PVA-only channels an IOC serves itself, merged into the PVA server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podioc import IOC, pv
from podioc.runtime.server import Runtime
from podioc.runtime.settings import Settings


class Clashing(IOC):
    value = pv.float(1.0)

    def pva_extras(self) -> dict[str, Any]:
        return {f"{self.prefix}VALUE": object(), f"{self.prefix}EXTRA": object()}


def test_default_has_none() -> None:
    assert IOC("X:").pva_extras() == {}


def test_extra_named_like_a_pv_is_refused() -> None:
    async def start() -> None:
        runtime = Runtime(Clashing("U:"), Settings(), protocols=("pva",), health=False)
        runtime._start_pva()

    with pytest.raises(ValueError, match=r"Clashing.pva_extras: U:VALUE already served as "
                                         r"PVs; give the extra channels other names"):
        asyncio.run(start())
