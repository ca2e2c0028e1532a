"""protocols/ca/dbr.py: EPICS base's float-to-string conversion and alarm acknowledgement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from podioc.protocols.ca.dbr import AckState, double_to_string, float_strings


@pytest.mark.parametrize(("value", "precision", "text"), [
    (25.10120312076999, 2, "25.10"),
    (1.5, 3, "1.500"),
    (0.125, 2, "0.13"),        # half up, like cvtDoubleToString (Python rounds to even)
    (-0.004, 2, "-0.00"),
    (2.9999, 2, "3.00"),       # carry into the whole number
    (7.0, 0, "7"),
    (12345678.9, 2, "12345678.90"),  # above 1e7: %.*f
    (12345678.9, 5, "12345678.900"),  # ... with at most 3 digits
    (3.4e38, 3, "3.400e+38"),  # above 1e16: %*.*e
    (1.0, 9, "1.000000000e+00"),
    (math.nan, 2, "nan"),
])
def test_double_to_string_like_epics_base(value: float, precision: int, text: str) -> None:
    assert double_to_string(value, precision).strip() == text


def test_float_strings_of_scalars_and_arrays() -> None:
    assert float_strings(1.0, 1) == [b"1.0"]
    assert float_strings(np.array([0.5, 1.25]), 2) == [b"0.50", b"1.25"]


def test_ack_state_follows_severity_and_acknowledgement() -> None:
    ack = AckState()
    assert ack.on_severity(2) and ack.acks == 2
    assert not ack.on_severity(0) and ack.acks == 2  # transient: stays until acknowledged
    assert not ack.put_acks(1) and ack.acks == 2     # acknowledging less does nothing
    assert ack.put_acks(2) and ack.acks == 0
    ack.on_severity(1)
    assert ack.put_ackt(False, current=0) and ack.acks == 0  # no transient acks: follows
    ack.on_severity(2)
    assert ack.on_severity(1) and ack.acks == 1
