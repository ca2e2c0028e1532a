"""Devices: sub-devices, vectors and PVs added at run time (podioc.model.device).

Naming rule: a sub-device adds ``SEGMENT:`` (its ``name=`` or attribute in
upper case), member ``n`` of a vector ``STEMn:``; hooks run with their own
device as ``self``; collisions are errors with file:line; nothing is added
after the IOC is sealed (serving).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import threading
from typing import Any

import pytest

from podioc import (
    IOC,
    AlreadyServingError,
    ConfigError,
    Device,
    DeviceVector,
    IOCDefinitionError,
    PutRefused,
    pv,
    scan,
    shutdown,
    startup,
)

HERE = __file__


def line_of(marker: str) -> int:
    """The line number of the first source line containing ``marker`` in this file."""
    for number, line in enumerate(inspect.getsource(sys.modules[__name__]).splitlines(),
                                  start=1):
        if marker in line and "line_of(" not in line:
            return number
    raise AssertionError(marker)


class Channel(Device):
    voltage = pv.float(0.0, units="V", writable=True)
    current = pv.float(0.0)

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []

    @voltage.validator
    async def _check(self, value: float) -> None:
        self.events.append(("validator", self.number))
        if self.number is not None and value > 10 * self.number:
            raise PutRefused(f"channel {self.number}: at most {10 * self.number} V")

    @voltage.on_put
    async def _drive(self, value: float) -> None:
        self.current.value = value / 10

    @scan(period=1.0)
    async def _poll(self) -> None:
        pass

    @startup
    async def _hello(self) -> None:
        self.events.append(("startup", self.path))

    @shutdown
    async def _bye(self) -> None:
        self.events.append(("shutdown", self.path))


class Supply(Device):
    output = pv.bool(False, writable=True)
    ch = pv.vector(Channel, 2)


class Rack(IOC):
    status = pv.string("ok")
    psu = pv.device(Supply)
    ch = pv.vector(Channel, count="channels")
    spare = pv.device(Channel, name="SP")
    flat = pv.device(Channel, name="")
    ax = pv.vector(Channel, 2, name="AXIS", start=0)

    def __init__(self, prefix: str = "", *, channels: int = 3) -> None:
        super().__init__(prefix)


# -- naming ------------------------------------------------------------------------
def test_naming_rule() -> None:
    rack = Rack("R:")
    assert rack.psu.output.name == "R:PSU:OUTPUT"
    assert rack.psu.ch[2].voltage.name == "R:PSU:CH2:VOLTAGE"
    assert rack.ch[3].current.name == "R:CH3:CURRENT"
    assert rack.spare.voltage.name == "R:SP:VOLTAGE"
    assert rack.flat.voltage.name == "R:VOLTAGE"
    assert rack.ax[0].voltage.name == "R:AXIS0:VOLTAGE" and list(rack.ax) == [0, 1]
    assert len(rack.pvs) == 1 + 1 + 2 * 2 + 3 * 2 + 2 + 2 + 2 * 2
    assert rack.pvs["R:CH3:CURRENT"] is rack.ch[3].current


def test_paths_numbers_parents_and_prefixes() -> None:
    rack = Rack("R:")
    chan = rack.psu.ch[2]
    assert (chan.path, chan.number, chan.parent, chan.name_prefix) == (
        "psu.ch[2]", 2, rack.psu, "R:PSU:CH2:")
    assert (rack.path, rack.parent, rack.number, rack.name_prefix) == ("", None, None, "R:")
    assert rack.path_of(chan.voltage) == "psu.ch[2].voltage"
    assert rack.find_pv("psu.ch[2].voltage") is chan.voltage  # by path
    assert rack.find_pv("PSU:CH2:VOLTAGE") is chan.voltage  # by suffix
    assert rack.find_pv("R:PSU:CH2:VOLTAGE") is chan.voltage  # by full name
    assert rack.find_pv("psu.ch[9].voltage") is None
    assert [d.path for d in rack.devices()][:4] == ["", "psu", "psu.ch[1]", "psu.ch[2]"]


def test_vector_is_a_read_only_mapping_by_number() -> None:
    rack = Rack("R:", channels=2)
    assert isinstance(rack.ch, DeviceVector) and len(rack.ch) == 2 and 2 in rack.ch
    assert [n for n, _ in rack.ch.items()] == [1, 2]
    with pytest.raises(KeyError, match=r"ch has no member 7 \(members: 1, 2\)"):
        rack.ch[7]
    with pytest.raises(AttributeError, match="cannot be replaced"):
        rack.ch = rack.ch  # type: ignore[assignment]  # the descriptor refuses it


def test_instances_are_independent() -> None:
    one, two = Rack("A:"), Rack("B:")
    one.ch[1].voltage.value = 3.0
    assert two.ch[1].voltage.value == 0.0 and one.ch[1] is not two.ch[1]


def test_a_loose_device_has_relative_names_until_attached() -> None:
    chan = Channel()
    assert chan.voltage.name == "VOLTAGE" and chan.parent is None and chan.path == ""


# -- counts from args --------------------------------------------------------------
def test_vector_count_comes_from_an_init_argument() -> None:
    assert len(Rack("R:").ch) == 3  # its default
    assert len(Rack("R:", channels=5).ch) == 5
    created = Rack.create("R:", {"channels": 1}, "inst.yaml")
    assert isinstance(created, Rack) and list(created.ch) == [1]
    assert "R:CH2:VOLTAGE" not in created.pvs


def test_a_bad_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"inst.yaml: args: Rack.* Rack.ch: the number of "
                                          r"devices is the argument channels, which is -1"):
        Rack.create("R:", {"channels": -1}, "inst.yaml")


def test_count_must_name_an_init_argument() -> None:
    with pytest.raises(IOCDefinitionError) as info:
        class NoArg(IOC):
            ch = pv.vector(Channel, count="channels")  # MARK-no-arg
    assert str(info.value).startswith(f"{HERE}:{line_of('MARK-no-arg')}: pv.vector "
                                      f"count='channels': NoArg.__init__ takes no argument")


# -- collisions at definition ------------------------------------------------------
def test_collision_between_sub_devices_names_both() -> None:
    with pytest.raises(IOCDefinitionError) as info:
        class Twice(IOC):
            a = pv.device(Channel)  # MARK-first-device
            b = pv.device(Channel, name="A")  # MARK-second-device
    text = str(info.value)
    assert text.startswith(f"{HERE}:{line_of('MARK-second-device')}: PV name 'A:VOLTAGE' of "
                           f"Twice.b.voltage is already used by Twice.a.voltage")
    assert f"{HERE}:{line_of('MARK-first-device')}" in text


def test_collision_with_a_counted_vector_is_found_at_definition() -> None:
    with pytest.raises(IOCDefinitionError, match=r"PV name 'CH2:CURRENT' of Clash.current2 is "
                                                 r"already used by Clash.ch\[n\].current"):
        class Clash(IOC):
            ch = pv.vector(Channel, count="n")
            current2 = pv.float(name="CH2:CURRENT")

            def __init__(self, prefix: str = "", n: int = 1) -> None:
                super().__init__(prefix)


def test_collision_inside_a_fixed_vector_and_flat_device() -> None:
    with pytest.raises(IOCDefinitionError, match=r"'VOLTAGE' of Flat.flat.voltage is already "
                                                 r"used by Flat.voltage"):
        class Flat(IOC):
            voltage = pv.float()
            flat = pv.device(Channel, name="")


def test_member_classes_are_checked() -> None:
    class Needs(Device):
        def __init__(self, port: str) -> None:
            super().__init__()

    with pytest.raises(IOCDefinitionError, match=r"Needs\(\) needs port; .*self.add_device"):
        pv.device(Needs)
    with pytest.raises(IOCDefinitionError, match="expected a Device subclass"):
        pv.vector(int, 2)  # type: ignore[type-var]
    with pytest.raises(IOCDefinitionError, match="an IOC cannot be a sub-device"):
        pv.device(Rack)
    with pytest.raises(IOCDefinitionError, match="not a usable name segment"):
        pv.device(Channel, name="A:B")
    with pytest.raises(IOCDefinitionError, match="count=-1 must be a number >= 0"):
        pv.vector(Channel, -1)


# -- hooks run with their own self -------------------------------------------------
def test_validators_and_put_hooks_of_vector_members_get_their_own_self() -> None:
    async def main() -> None:
        rack = Rack("R:")
        with pytest.raises(PutRefused, match="R:CH1:VOLTAGE: channel 1: at most 10 V"):
            await rack.ch[1].voltage.put(15)
        await rack.ch[2].voltage.put(15)
        assert rack.ch[2].current.value == 1.5 and rack.ch[1].current.value == 0.0
        assert rack.ch[1].events == [("validator", 1)]
        assert rack.ch[2].events == [("validator", 2)]

    asyncio.run(main())


def test_methods_cover_the_tree_with_bound_selves() -> None:
    rack = Rack("R:", channels=1)
    scans = rack.methods("scan")
    owners = [getattr(method, "__self__", None) for method, _ in scans]
    assert owners == [d for d in rack.devices() if isinstance(d, Channel)]
    assert all(period == 1.0 for _, period in scans)


# -- building at run time ----------------------------------------------------------
def test_add_device_and_add_vector_with_arguments() -> None:
    rack = Rack("R:", channels=1)
    aux = rack.add_device("aux", Channel())
    sensors = rack.add_vector("sensor", {4: Channel(), 7: Channel()}, name="S")
    assert aux.voltage.name == "R:AUX:VOLTAGE" and aux.path == "aux"
    assert sensors[7].current.name == "R:S7:CURRENT" and sensors.path == "sensor"
    assert rack.member("sensor") is sensors
    extra = sensors[4].add_pv(pv.int(3, name="EXTRA"))
    assert extra.name == "R:S4:EXTRA" and rack.pvs["R:S4:EXTRA"] is extra
    assert rack.find_pv("sensor[4].EXTRA") is extra


def test_a_device_built_loose_gets_its_names_when_attached() -> None:
    chan = Channel()
    added = chan.add_pv(pv.float(1.0, name="GAIN"))
    rack = Rack("R:", channels=1)
    rack.add_vector("out", [chan])
    assert added.name == "R:OUT1:GAIN" and rack.pvs["R:OUT1:VOLTAGE"] is chan.voltage


def test_a_colliding_attach_changes_nothing() -> None:
    rack = Rack("R:", channels=1)
    before = dict(rack.pvs)
    chan = Channel()
    with pytest.raises(IOCDefinitionError) as info:
        rack.add_device("again", chan, name="CH1")  # MARK-attach-clash
    text = str(info.value)
    assert text.startswith(f"{HERE}:{line_of('MARK-attach-clash')}: cannot attach again: ")
    assert "PV R:CH1:VOLTAGE is defined twice" in text and "'ch[1].voltage'" in text
    assert rack.pvs == before and chan.parent is None and chan.path == ""
    with pytest.raises(KeyError):
        rack.member("again")
    rack.add_device("again", chan, name="C9")  # the device is still usable
    assert chan.voltage.name == "R:C9:VOLTAGE"


def test_attaching_twice_or_to_a_used_attribute_is_refused() -> None:
    rack = Rack("R:", channels=1)
    with pytest.raises(IOCDefinitionError, match=r"already part of a tree at 'psu\.ch\[1\]'"):
        rack.add_device("stolen", rack.psu.ch[1])
    with pytest.raises(IOCDefinitionError, match="attribute 'psu' of Rack is already used"):
        rack.add_device("psu", Channel())
    with pytest.raises(IOCDefinitionError, match="cannot add PV R:PSU as attribute 'psu'"):
        rack.add_pv(pv.int(0, name="PSU"), "psu")


def test_run_time_pv_validators_and_put_hooks() -> None:
    async def main() -> None:
        rack = Rack("R:", channels=1)
        seen: list[float] = []
        live = rack.ch[1].add_pv(pv.float(0.0, name="LIMIT", writable=True))

        @live.validator
        async def positive(value: float) -> None:
            if value < 0:
                raise PutRefused("must be positive")

        async def record(tag: str, value: float) -> None:
            seen.append(value)

        live.on_put(functools.partial(record, "limit"))
        with pytest.raises(PutRefused, match="R:CH1:LIMIT: must be positive"):
            await live.put(-1)
        await live.put(2.5)
        assert live.value == 2.5 and seen == [2.5]

    asyncio.run(main())
    chan = Channel()

    def not_async(value: float) -> None:
        pass

    with pytest.raises(IOCDefinitionError, match="validator 'not_async' must be 'async def'"):
        chan.voltage.validator(not_async)  # type: ignore[arg-type]


def test_nothing_is_added_once_sealed() -> None:
    rack = Rack("R:", channels=1)
    rack.seal()
    count = len(rack.pvs)
    with pytest.raises(AlreadyServingError, match=r"cannot add PV R:LATE: the IOC \(prefix "
                                                  r"'R:'\) is already serving"):
        rack.add_pv(pv.int(0, name="LATE"))
    with pytest.raises(AlreadyServingError, match="cannot add PV R:CH1:LATE"):
        rack.ch[1].add_pv(pv.int(0, name="LATE"))
    with pytest.raises(AlreadyServingError, match="cannot add sub-device aux"):
        rack.add_device("aux", Channel())
    assert len(rack.pvs) == count


def test_devices_added_while_walking_the_tree_are_visited() -> None:
    """As the runtime runs startup hooks: parents first, then what they added."""
    class Discovering(IOC):
        @startup
        async def _discover(self) -> None:
            self.add_vector("found", [Channel(), Channel()])

    async def main() -> list[str]:
        ioc = Discovering("D:")
        for device in ioc.devices():
            for method, _ in device.own_methods("startup"):
                await method()
        return [event[1] for d in ioc.devices() if isinstance(d, Channel)
                for event in d.events]

    assert asyncio.run(main()) == ["found[1]", "found[2]"]


# -- threads -----------------------------------------------------------------------
def test_sub_device_pvs_set_from_a_thread_are_applied_on_the_loop_thread() -> None:
    async def main() -> None:
        rack = Rack("R:", channels=1)
        rack.bind_loop(asyncio.get_running_loop())
        late = rack.add_vector("late", [Channel()])  # added after binding: bound too
        seen: list[tuple[str, int]] = []
        for live in (rack.ch[1].voltage, late[1].voltage):
            live.subscribe(lambda p: seen.append((p.name, threading.get_ident())))

        def work() -> float:
            rack.ch[1].voltage.value = 4.0
            late[1].voltage.value = 5.0
            return late[1].voltage.value  # reads its own write back

        assert await asyncio.to_thread(work) == 5.0
        loop_thread = threading.get_ident()
        assert seen == [("R:CH1:VOLTAGE", loop_thread), ("R:LATE1:VOLTAGE", loop_thread)]

    asyncio.run(main())
