"""The PVI structure (podioc.protocols.pva.pvi) built in process: layout, laziness, clashes."""

from __future__ import annotations

import asyncio

import pytest

from podioc import IOC, ConfigError, pv
from podioc.model.grouping import group_pvs
from podioc.protocols.pva.pvi import make_pvi, pvi_value


class Grouped(IOC):
    """Grouped device."""

    temp = pv.float(1.0, name="TEMP")
    gain = pv.float(1.0, name="CH1:GAIN", writable=True)
    gain2 = pv.float(1.0, name="CH2:GAIN", writable=True)


def test_value_has_the_fastcs_layout() -> None:
    ioc = Grouped("G:")
    root = group_pvs("G:", ioc.pvs, lambda name: bool(ioc.pvs[name].spec.writable))
    value = pvi_value(root, "PVI", "Grouped device")
    assert value.getID() == "structure"
    assert set(value.keys()) == {"alarm", "timeStamp", "display", "value"}
    assert value["display.description"] == "Grouped device"
    assert value.todict()["value"] == {"ch": {"d": "G:CH:PVI"}, "temp": {"r": "G:TEMP"}}
    vector = pvi_value(root.groups["ch"], "PVI", "")
    assert vector.todict()["value"] == {"__1": {"d": "G:CH1:PVI"}, "__2": {"d": "G:CH2:PVI"}}
    member = pvi_value(root.groups["ch"].vector[2], "PVI", "")
    assert member.todict()["value"] == {"gain": {"rw": "G:CH2:GAIN"}}


def test_one_closed_pv_per_group_until_a_client_connects() -> None:
    async def build() -> dict[str, bool]:
        shared = make_pvi("G:", Grouped("G:").pvs, "PVI", "d")
        return {name: bool(pv.isOpen()) for name, pv in shared.items()}

    assert asyncio.run(build()) == {"G:PVI": False, "G:CH:PVI": False, "G:CH1:PVI": False,
                                    "G:CH2:PVI": False}


def test_a_pvi_name_taken_by_a_pv_is_refused() -> None:
    class Clash(IOC):
        pvi = pv.string("", name="PVI")

    async def build() -> None:
        make_pvi("C:", Clash("C:").pvs, "PVI")

    with pytest.raises(ConfigError, match=r"C:PVI has the name of one of the IOC's PVs"):
        asyncio.run(build())
