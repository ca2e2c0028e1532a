"""The IOC base class: instantiation from config args, add_pv, hooks lookup."""

from __future__ import annotations

from typing import Any

import pytest

from podioc import IOC, ConfigError, IOCDefinitionError, pv, scan, shutdown, startup


class WithArgs(IOC):
    value = pv.float(0.0)

    def __init__(self, prefix: str = "", *, gain: float = 1.0, port: str,
                 channels: int = 2) -> None:
        super().__init__(prefix)
        if channels < 1:
            raise ValueError("channels must be at least 1")
        self.gain, self.port, self.channels = gain, port, channels


class Flexible(IOC):
    def __init__(self, prefix: str = "", **options: Any) -> None:
        super().__init__(prefix)
        self.options = options


def test_create_passes_args() -> None:
    ioc = WithArgs.create("P:", {"port": "/dev/tty0", "gain": 2.5}, "inst.yaml")
    assert isinstance(ioc, WithArgs)
    assert (ioc.prefix, ioc.port, ioc.gain, ioc.channels) == ("P:", "/dev/tty0", 2.5, 2)
    assert list(ioc.pvs) == ["P:VALUE"]


def test_unknown_arg_names_source_field_and_accepted() -> None:
    with pytest.raises(ConfigError) as info:
        WithArgs.create("P:", {"port": "x", "gian": 2}, "inst.yaml")
    err = info.value
    assert (err.source, err.field) == ("inst.yaml", "args.gian")
    assert str(err) == ("inst.yaml: args.gian: WithArgs takes no argument 'gian' "
                        "(accepted: gain, port, channels)")


def test_missing_arg() -> None:
    with pytest.raises(ConfigError, match=r"inst.yaml: args: WithArgs needs port \(add them"):
        WithArgs.create("P:", {}, "inst.yaml")


def test_init_error_becomes_config_error() -> None:
    with pytest.raises(ConfigError, match=r"args: WithArgs.*failed: channels must be at least 1"):
        WithArgs.create("P:", {"port": "x", "channels": 0}, "inst.yaml")


def test_var_keyword_takes_anything() -> None:
    ioc = Flexible.create("", {"anything": 1}, "inst.yaml")
    assert isinstance(ioc, Flexible) and ioc.options == {"anything": 1}


def test_no_args_class() -> None:
    class Plain(IOC):
        a = pv.int(1)

    with pytest.raises(ConfigError, match="accepted: none"):
        Plain.create("", {"x": 1}, "src")


def test_add_pv_and_duplicates() -> None:
    ioc = WithArgs("Q:", port="p")
    extra = ioc.add_pv(pv.int(5, name="CH1"))
    assert ioc.pvs["Q:CH1"] is extra and extra.value == 5
    assert [p.name for p in ioc] == ["Q:VALUE", "Q:CH1"]
    with pytest.raises(IOCDefinitionError, match="PV Q:CH1 is defined twice"):
        ioc.add_pv(pv.int(0, name="CH1"))


def test_add_pv_refuses_an_attribute_name_in_use() -> None:
    ioc = WithArgs("Q:", port="p")
    original = ioc.value
    with pytest.raises(IOCDefinitionError) as info:
        ioc.add_pv(pv.int(0, name="OTHER"), "value")
    message = str(info.value)
    assert "attribute 'value'" in message and "Q:VALUE" in message
    assert "test_model_ioc.py" in message and "pass another attr" in message
    assert ioc.value is original and "Q:OTHER" not in ioc.pvs  # nothing changed


def test_add_pv_without_attr_refuses_a_name_used_as_attribute() -> None:
    ioc = WithArgs("Q:", port="p")
    ioc.add_pv(pv.int(1, name="CH1"))
    with pytest.raises(IOCDefinitionError, match="attribute 'CH1' is already used by Q:CH1"):
        ioc.add_pv(pv.int(2, name="CH2"), "CH1")
    assert list(ioc.pvs) == ["Q:VALUE", "Q:CH1"]


def test_add_pv_refuses_a_pv_name_in_use_naming_both() -> None:
    ioc = WithArgs("Q:", port="p")
    first = ioc.add_pv(pv.int(1, name="CH1"), "first")
    with pytest.raises(IOCDefinitionError) as info:
        ioc.add_pv(pv.int(2, name="CH1"), "second")
    message = str(info.value)
    assert "PV Q:CH1 is defined twice" in message and "attribute 'first'" in message
    assert "pass another name=" in message
    assert ioc.pv_by_attr("first") is first and ioc.pvs["Q:CH1"] is first
    with pytest.raises(KeyError):
        ioc.pv_by_attr("second")


def test_instances_are_independent() -> None:
    one, two = WithArgs("A:", port="p"), WithArgs("B:", port="p")
    one.value.set(3.0)
    assert two.value.value == 0.0 and one.pvs["A:VALUE"] is one.value


def test_methods_by_kind() -> None:
    class Hooks(IOC):
        @startup
        async def begin(self) -> None:
            pass

        @shutdown
        async def end(self) -> None:
            pass

        @scan(period=0.5)
        async def fast(self) -> None:
            pass

        @scan(period=2)
        async def slow(self) -> None:
            pass

    ioc = Hooks("")
    assert [(m.__name__, arg) for m, arg in ioc.methods("scan")] == [("fast", 0.5),
                                                                       ("slow", 2.0)]
    assert [m.__name__ for m, _ in ioc.methods("startup")] == ["begin"]
    assert [m.__name__ for m, _ in ioc.methods("shutdown")] == ["end"]
    assert ioc.methods("validator") == []
