"""Coercion rules of every PV kind (podioc.model.kinds): what is accepted, what is refused."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from podioc import PutRefused
from podioc.model import kinds


@pytest.mark.parametrize(("value", "expected"), [
    (1, 1.0), (2.5, 2.5), (np.float32(0.5), 0.5), (np.int16(3), 3.0), ([4.0], 4.0),
    (np.array([5.5]), 5.5), (" 6.25 ", 6.25), ("1e3", 1000.0), (b"7", 7.0), ("nan", math.nan),
])
def test_float_accepts(value: Any, expected: float) -> None:
    got = kinds.coerce_float(value)
    assert type(got) is float
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@pytest.mark.parametrize("value", [True, np.bool_(False), "abc", None, [1.0, 2.0], [], {}])
def test_float_refuses(value: Any) -> None:
    with pytest.raises(PutRefused):
        kinds.coerce_float(value)


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3), (3.0, 3), (np.int64(-4), -4), ("12", 12), ("0x10", 16), ([7], 7),
    (kinds.INT32_MAX, kinds.INT32_MAX), (kinds.INT32_MIN, kinds.INT32_MIN),
])
def test_int_accepts(value: Any, expected: int) -> None:
    got = kinds.coerce_int(value)
    assert type(got) is int and got == expected


@pytest.mark.parametrize(("value", "message"), [
    (3.5, "not an integer"), (math.inf, "not an integer"), (math.nan, "not an integer"),
    ("1.5", "not an integer"), (True, "not an integer"), (2**31, "32-bit"),
    (-(2**31) - 1, "32-bit"), ([1, 2], "single value"),
])
def test_int_refuses(value: Any, message: str) -> None:
    with pytest.raises(PutRefused, match=message):
        kinds.coerce_int(value)


CHOICES = ("OFF", "HEAT", "COOL")


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0), (2, 2), ("HEAT", 1), ("COOL", 2), (" 1 ", 1), (np.uint16(2), 2), ([1], 1),
    (True, 1), (2.0, 2), (b"OFF", 0),
])
def test_enum_accepts(value: Any, expected: int) -> None:
    assert kinds.coerce_enum(value, CHOICES) == expected


@pytest.mark.parametrize(("value", "message"), [
    (3, "index 3 is out of range 0..2"), (-1, "out of range"), ("heat", "is not one of"),
    ("BAD", "is not one of"), (1.5, "not a state index"), (None, "not a state index"),
])
def test_enum_refuses(value: Any, message: str) -> None:
    with pytest.raises(PutRefused, match=message):
        kinds.coerce_enum(value, CHOICES)


def test_string_limits_are_bytes_not_characters() -> None:
    assert kinds.coerce_string("x" * 39) == "x" * 39
    assert kinds.coerce_string("é" * 19) == "é" * 19  # 38 bytes
    with pytest.raises(PutRefused, match="string of 40 bytes"):
        kinds.coerce_string("é" * 20)
    with pytest.raises(PutRefused, match="40 bytes is longer than the 39-byte limit"):
        kinds.coerce_string("x" * 40)


@pytest.mark.parametrize(("value", "expected"), [
    ("abc", "abc"), (b"bytes", "bytes"), ([b"one"], "one"), (np.array(["np"]), "np"), ("", ""),
])
def test_string_accepts(value: Any, expected: str) -> None:
    assert kinds.coerce_string(value) == expected


@pytest.mark.parametrize("value", [5, 1.5, None, ["a", "b"]])
def test_string_refuses(value: Any) -> None:
    with pytest.raises(PutRefused):
        kinds.coerce_string(value)


@pytest.mark.parametrize("dtype", kinds.ARRAY_DTYPES)
def test_array_copies_and_freezes(dtype: str) -> None:
    source = np.array([1, 2, 3], dtype=dtype)
    out = kinds.coerce_array(source, np.dtype(dtype), 8)
    assert out.dtype == np.dtype(dtype) and out.tolist() == [1, 2, 3]
    assert not out.flags.writeable
    source[0] = 9
    assert out[0] == 1  # a copy, not a view


def test_array_conversions() -> None:
    f64 = np.dtype("float64")
    assert kinds.coerce_array([1, 2], f64, 4).dtype == f64
    assert kinds.coerce_array(3.0, f64, 4).tolist() == [3.0]  # a scalar is one element
    assert kinds.coerce_array([], f64, 4).tolist() == []
    assert kinds.coerce_array([1.0, 2.0], np.dtype("int32"), 4).tolist() == [1, 2]
    assert kinds.coerce_array([True, False], np.dtype("uint8"), 4).tolist() == [1, 0]


@pytest.mark.parametrize(("value", "dtype", "message"), [
    ([1, 2, 3, 4, 5], "float64", "array of 5 elements exceeds the maximum of 4"),
    ([[1, 2], [3, 4]], "float64", "one-dimensional"),
    ("text", "float64", "not a numeric array"),
    (b"\x01\x02", "uint8", "not a numeric array"),
    (["a", "b"], "float64", "is not numeric"),
    ([1.5], "int32", "non-integral"),
    ([math.nan], "int16", "non-integral"),
    ([256], "uint8", "out of the uint8 range 0..255"),
    ([-1], "uint8", "out of the uint8 range"),
    ([40000], "int16", "out of the int16 range -32768..32767"),
    ([2**31], "int32", "out of the int32 range"),
])
def test_array_refuses(value: Any, dtype: str, message: str) -> None:
    with pytest.raises(PutRefused, match=message):
        kinds.coerce_array(value, np.dtype(dtype), 4)
