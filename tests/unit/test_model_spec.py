"""PV specs and IOC classes are checked when defined; errors name file:line."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import numpy as np
import pytest

from podioc import IOC, IOCDefinitionError, PutRefused, pv, scan, shutdown, startup
from podioc.model import PV, Kind, PVSpec

HERE = __file__


def line_of(marker: str) -> int:
    """The line number of the first source line containing ``marker`` in this file."""
    for number, line in enumerate(inspect.getsource(sys.modules[__name__]).splitlines(),
                                  start=1):
        if marker in line and "line_of(" not in line:
            return number
    raise AssertionError(marker)


def test_declared_at_is_the_call_site() -> None:
    spec = pv.float(1.0)  # MARK-declared-at
    assert spec.declared_at == f"{HERE}:{line_of('MARK-declared-at')}"


@pytest.mark.parametrize(("make", "problem"), [
    (lambda: pv.float(0.0, name="bad name"), "has characters not allowed in a PV name"),
    (lambda: pv.float(0.0, units="12345678"), "longer than CA's 7 bytes"),
    (lambda: pv.float(0.0, precision=18), "precision 18 must be 0..17"),
    (lambda: pv.float(0.0, precision=-1), "precision -1 must be 0..17"),
    (lambda: pv.float(0.0, limits=(5, 1)), "limits=(5.0, 1.0) must be (low, high) with low < high"),
    (lambda: pv.int(0, display_limits=(1, 1)), "display_limits=(1.0, 1.0) must be"),
    (lambda: pv.float(0.0, alarm=pv.Alarm(high=5, hihi=1)), "alarm limit high=5 is above hihi=1"),
    (lambda: pv.float(50.0, limits=(0, 10)), "initial value 50.0 is outside limits"),
    (lambda: pv.int(1.5), "initial value 1.5: 1.5 is not an integer"),  # type: ignore[arg-type]
    (lambda: pv.string("x" * 40), "longer than the 39-byte limit"),
    (lambda: pv.enum([]), "an enum needs 1..16 states, got 0"),
    (lambda: pv.enum([f"S{i}" for i in range(17)]), "an enum needs 1..16 states, got 17"),
    (lambda: pv.enum(["A" * 26]), "at most 25 bytes"),
    (lambda: pv.enum(["A", "A"]), "are not unique"),
    (lambda: pv.enum(["A", "B"], "C"), "is not one of"),
    (lambda: pv.enum(["A", "B"], 2), "index 2 is out of range"),
    (lambda: pv.bool(False, states=("Same", "Same")), "are not unique"),
    (lambda: pv.bool(False, states=("Off", "B" * 26)), "at most 25 bytes"),
    (lambda: pv.bool(False, states=("A", "B", "C")),  # type: ignore[arg-type]
     "a bool needs 2 states, got 3"),
    (lambda: pv.waveform(4, dtype="complex128"),  # type: ignore[arg-type]
     "dtype 'complex128' is not one of"),
    (lambda: pv.waveform(0), "max_length 0 must be at least 1"),
    (lambda: pv.waveform(2, [1, 2, 3]), "array of 3 elements exceeds the maximum of 2"),
    (lambda: pv.waveform(4, [300], dtype="uint8"), "out of the uint8 range"),
    (lambda: pv.float(0.0, on_limit="clamp"), "on_limit='clamp' needs limits=(low, high)"),
    (lambda: pv.float(0.0, deadband=-1), "deadband=-1: a number >= 0"),
    (lambda: pv.float(0.0, limits=(0, 1), on_limit="wrap"),  # type: ignore[arg-type]
     "on_limit='wrap' must be 'refuse' or 'clamp'"),
])
def test_spec_problems(make: Any, problem: str) -> None:
    with pytest.raises(IOCDefinitionError) as info:
        make()
    assert problem in str(info.value)
    assert f"{HERE}:" in str(info.value)


def test_alarm_limits_only_on_numbers() -> None:
    with pytest.raises(IOCDefinitionError, match="alarm limits apply to numeric PVs, not string"):
        PVSpec(Kind.STRING, "", alarm=pv.Alarm(high=1), declared_at="x.py:1")


def test_error_names_the_ioc_file_and_line() -> None:
    with pytest.raises(IOCDefinitionError) as info:
        class Broken(IOC):
            bad = pv.float(0.0, limits=(10, 0))  # MARK-broken-limits
    assert str(info.value).startswith(f"{HERE}:{line_of('MARK-broken-limits')}: PV ")


def test_defaults_and_descriptor() -> None:
    class Device(IOC):
        set_point = pv.float(1.0, writable=True)
        named = pv.int(2, name="OTHER:NAME")

    assert Device.set_point.name == "SET_POINT" and Device.set_point.attr == "set_point"
    assert Device.named.name == "OTHER:NAME"
    assert isinstance(Device.set_point, PVSpec)
    device = Device("P:")
    assert isinstance(device.set_point, PV) and device.set_point.name == "P:SET_POINT"
    assert set(device.pvs) == {"P:SET_POINT", "P:OTHER:NAME"}
    with pytest.raises(AttributeError, match=r"set self\.set_point\.value instead"):
        device.set_point = 5  # type: ignore[assignment]  # mypy refuses it too


def test_kind_defaults() -> None:
    assert pv.float().precision == 3 and pv.int().precision == 0
    assert pv.bool().choices == ("Off", "On")
    assert pv.waveform(8).initial.tolist() == []
    assert pv.waveform(8, dtype="int16").coerce([1]).dtype == np.int16
    assert not pv.float().writable
    assert pv.float(limits=(0, 1)).limits == (0.0, 1.0)


def test_describe_keys() -> None:
    doc = pv.waveform(8, [1.0], units="V", limits=(0, 5), alarm=pv.Alarm(high=4)).describe()
    assert doc == {"kind": "array", "writable": False, "description": "", "units": "V",
                   "precision": 3, "limits": [0.0, 5.0], "display_limits": None,
                   "alarm": {"lolo": None, "low": None, "high": 4, "hihi": None},
                   "choices": None, "dtype": "float64", "max_length": 8, "autosave": False,
                   "on_limit": "refuse", "deadband": None, "archive_deadband": None}
    assert pv.enum(["A", "B"]).describe()["choices"] == ["A", "B"]
    assert pv.bool().describe()["max_length"] == 1


def test_clamped() -> None:
    assert pv.float(0.0, limits=(-1, 1), on_limit="clamp").clamped(5.0) == 1.0
    assert pv.int(0, limits=(-2.5, 7.5), on_limit="clamp").clamped(-10) == -2
    assert pv.int(0, limits=(-2.5, 7.5), on_limit="clamp").clamped(10) == 7
    wf = pv.waveform(3, limits=(0, 10), dtype="int32", on_limit="clamp")
    out = wf.clamped(np.array([-5, 5, 50], dtype="int32"))
    assert out.tolist() == [0, 5, 10] and out.dtype == np.int32


def test_within_limits() -> None:
    spec = pv.waveform(4, limits=(0, 10))
    assert spec.within_limits(np.array([0.0, 10.0]))
    assert not spec.within_limits(np.array([0.0, 10.5]))
    assert spec.within_limits(np.array([]))
    assert pv.float().within_limits(1e300)


# -- hooks -----------------------------------------------------------------------------------
def test_scan_period_must_be_positive() -> None:
    for period in (0, -1, True, "1"):
        with pytest.raises(IOCDefinitionError, match="period must be a positive number"):
            scan(period=period)  # type: ignore[arg-type]


def test_hook_must_be_async_with_file_and_line() -> None:
    with pytest.raises(IOCDefinitionError) as info:
        @scan(period=1.0)  # type: ignore[type-var]  # MARK-sync-scan (a decorated function starts at its decorator)
        def tick(self: Any) -> None:
            pass
    text = str(info.value)
    assert text.startswith(f"{HERE}:{line_of('MARK-sync-scan')}: scan 'tick' must be 'async def'")


@pytest.mark.parametrize(("decorator", "role", "expected"), [
    (startup, "startup hook", "(self)"), (shutdown, "shutdown hook", "(self)"),
])
def test_hook_signatures(decorator: Any, role: str, expected: str) -> None:
    async def extra_arg(self: Any, other: Any) -> None:  # MARK-extra-arg
        pass

    with pytest.raises(IOCDefinitionError) as info:
        decorator(extra_arg)
    text = str(info.value)
    assert text.startswith(f"{HERE}:{line_of('MARK-extra-arg')}: {role} 'extra_arg'")
    assert f"expected {expected}" in text


def test_validator_and_on_put_signatures() -> None:
    spec = pv.float()

    async def no_value(self: Any) -> None:
        pass

    def not_async(self: Any, value: Any) -> None:
        pass

    async def required_kwonly(self: Any, value: Any, *, extra: Any) -> None:
        pass

    with pytest.raises(IOCDefinitionError, match="validator 'no_value' has signature"):
        spec.validator(no_value)  # type: ignore[arg-type]
    with pytest.raises(IOCDefinitionError, match="put hook 'not_async' must be 'async def'"):
        spec.on_put(not_async)  # type: ignore[arg-type]
    with pytest.raises(IOCDefinitionError, match="expected \\(self, value\\)"):
        spec.on_put(required_kwonly)  # type: ignore[arg-type]


def test_duplicate_pv_names() -> None:
    with pytest.raises(IOCDefinitionError) as info:
        class Twice(IOC):
            a = pv.float(name="SAME")
            b = pv.float(name="SAME")  # MARK-second-same
    text = str(info.value)
    assert text.startswith(f"{HERE}:{line_of('MARK-second-same')}: PV name 'SAME'")
    assert "already used by Twice.a" in text


def test_validator_of_a_foreign_pv() -> None:
    other = pv.float()

    with pytest.raises(IOCDefinitionError, match="decorates a PV that is not an attribute"):
        class Foreign(IOC):
            mine = pv.float()

            @other.validator
            async def check(self, value: float) -> None:
                pass


def test_subclass_inherits_and_overrides() -> None:
    class Base(IOC):
        a = pv.float(1.0)

        @scan(period=1.0)
        async def tick(self) -> None:
            pass

    class Child(Base):
        b = pv.int(2)

        @scan(period=2.0)
        async def tick(self) -> None:  # replaces the base scan, not added to it
            pass

    assert list(Child.pv_specs) == ["a", "b"]
    assert Child.hook_table == [("scan", 2.0, "tick")]
    assert [arg for _, arg in Child("").methods("scan")] == [2.0]


def test_coerce_refusals_are_put_refused() -> None:
    with pytest.raises(PutRefused):
        pv.int().coerce("x")
