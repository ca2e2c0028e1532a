"""Framing (terminator, fixed length) and Backoff: pure, no I/O."""

from __future__ import annotations

import itertools

import pytest

from podioc.io import Backoff, DeviceProtocolError, FixedLength, Terminator
from podioc.io.framing import framing_of


def test_terminator_splits_complete_frames_and_keeps_the_rest() -> None:
    framing = Terminator("\r\n")
    buffer = bytearray(b"A\r\nBC\r\nD")
    assert framing.split(buffer) == [b"A", b"BC"]
    assert buffer == b"D"
    buffer += b"E\r"  # the terminator split across two reads
    assert framing.split(buffer) == []
    buffer += b"\n"
    assert framing.split(buffer) == [b"DE"]
    assert buffer == b""


def test_terminator_encodes_with_the_write_terminator() -> None:
    assert Terminator("\r\n", "\r").encode(b"MEAS?") == b"MEAS?\r"
    assert Terminator(b"\x03").encode(b"X") == b"X\x03"
    assert framing_of("\n").encode(b"X") == b"X\n"


def test_overlong_frame_is_garbage() -> None:
    framing = Terminator("\n", max_frame=8)
    ok = bytearray(b"12345678\n")
    assert framing.split(ok) == [b"12345678"]
    with pytest.raises(DeviceProtocolError, match="9 bytes without the terminator"):
        framing.split(bytearray(b"123456789"))
    with pytest.raises(DeviceProtocolError, match="garbage from the device"):
        framing.split(bytearray(b"123456789\n"))


def test_fixed_length() -> None:
    framing = FixedLength(3, write_terminator="\n")
    buffer = bytearray(b"abcdefg")
    assert framing.split(buffer) == [b"abc", b"def"]
    assert buffer == b"g"
    assert framing.encode(b"Q") == b"Q\n"


@pytest.mark.parametrize("bad", ["", b""])
def test_empty_terminator_is_refused(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Terminator(bad)


def test_framing_of_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="expected a terminator"):
        framing_of(3)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = list(itertools.islice(Backoff().delays(), 8))
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert list(itertools.islice(Backoff(1.0, 3.0, 10.0).delays(), 4)) == [1, 3, 9, 10]


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="initial <= maximum"):
        Backoff(initial=10.0, maximum=1.0)
    with pytest.raises(ValueError):
        Backoff(initial=0.0)
