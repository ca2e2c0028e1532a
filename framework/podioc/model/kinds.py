"""PV kinds and the coercion of values into them (one place for every type rule)."""

from __future__ import annotations

import enum
import math
import numbers
from typing import Any

import numpy as np

from ..errors import PutRefused

#: CA's DBR_STRING holds 40 bytes including the terminating NUL.
MAX_STRING_BYTES = 39
#: CA's DBR_ENUM: at most 16 states of at most 25 characters.
MAX_ENUM_STATES = 16
MAX_ENUM_STRING = 25
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: Array element types supported, by numpy dtype name.
ARRAY_DTYPES = ("float64", "float32", "int32", "int16", "uint8")


class Kind(enum.Enum):
    """The value kind of a PV; protocols map each kind in one table."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"
    STRING = "string"
    ARRAY = "array"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _scalar(value: Any) -> Any:
    """Unwrap a one-element sequence or numpy scalar, as CA delivers scalars."""
    if isinstance(value, np.ndarray | list | tuple):
        if len(value) != 1:
            raise PutRefused(f"expected a single value, got {len(value)} elements")
        value = value[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value


def coerce_float(value: Any) -> float:
    """A real number (strings that parse as numbers are accepted)."""
    if type(value) is float:  # the common cases, as the rules below would return them
        return value
    if type(value) is int:
        return float(value)
    value = _scalar(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise PutRefused(f"{value!r} is not a number") from None
    if isinstance(value, bool) or not _is_number(value):
        raise PutRefused(f"{value!r} ({type(value).__name__}) is not a number")
    return float(value)


def coerce_int(value: Any) -> int:
    """A 32-bit integer; a float is accepted only when it is integral."""
    if type(value) is int and INT32_MIN <= value <= INT32_MAX:  # the common case
        return value
    value = _scalar(value)
    if isinstance(value, str):
        try:
            value = int(value.strip(), 0)
        except ValueError:
            raise PutRefused(f"{value!r} is not an integer") from None
    if isinstance(value, bool) or not _is_number(value):
        raise PutRefused(f"{value!r} ({type(value).__name__}) is not an integer")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise PutRefused(f"{value!r} is not an integer")
    number = int(value)
    if not INT32_MIN <= number <= INT32_MAX:
        raise PutRefused(f"{number} does not fit in a 32-bit integer")
    return number


def coerce_enum(value: Any, choices: tuple[str, ...]) -> int:
    """An index into ``choices``, given as an index or as one of the strings."""
    value = _scalar(value)
    if isinstance(value, str):
        if value in choices:
            return choices.index(value)
        stripped = value.strip()
        if stripped.isdigit():
            value = int(stripped)
        else:
            raise PutRefused(f"{value!r} is not one of {list(choices)}")
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise PutRefused(f"{value!r} is not a state index or name of {list(choices)}")
    if not 0 <= value < len(choices):
        raise PutRefused(f"index {value} is out of range 0..{len(choices) - 1} "
                         f"(states: {list(choices)})")
    return value


def coerce_string(value: Any, max_bytes: int = MAX_STRING_BYTES) -> str:
    """A string of at most ``max_bytes`` bytes in UTF-8."""
    value = _scalar(value)
    if isinstance(value, np.ndarray):
        value = value.tobytes().split(b"\0", 1)[0].decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise PutRefused(f"{value!r} ({type(value).__name__}) is not a string")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise PutRefused(f"string of {size} bytes is longer than the {max_bytes}-byte limit "
                         "of a CA string")
    return value


def coerce_array(value: Any, dtype: np.dtype[Any], max_length: int) -> np.ndarray[Any, Any]:
    """A 1-D array of ``dtype`` with at most ``max_length`` elements (always a fresh copy)."""
    if isinstance(value, str | bytes):
        raise PutRefused(f"{value!r} is not a numeric array")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise PutRefused(f"not a numeric array: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise PutRefused(f"array must be one-dimensional, got shape {arr.shape}")
    if arr.size > max_length:
        raise PutRefused(f"array of {arr.size} elements exceeds the maximum of {max_length}")
    if arr.dtype.kind not in "biuf":
        raise PutRefused(f"array of {arr.dtype} is not numeric")
    if dtype.kind in "iu" and arr.dtype.kind == "f" and (
            not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0)):
            raise PutRefused(f"array has non-integral elements for a {dtype} array")
    if dtype.kind in "iu" and arr.size:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise PutRefused(f"array elements out of the {dtype} range {info.min}..{info.max}")
    out = np.array(arr, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out
