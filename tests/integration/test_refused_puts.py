"""Refused puts: the client sees an error, the value stays, the IOC keeps serving.

How each client sees a refusal:
- caproto: the put-callback answer carries ECA_PUTFAIL (podioc answers like rsrv).
- p4p: ``RemoteError`` with the model's message (names the PV and the reason).
- pyepics: ``put(wait=True)`` ignores the put-callback status, so only the value
  shows it; a put without wait gets the server's message printed by libca.
  pyepics refuses some values itself (strings over 40 bytes, text for a number,
  writes to read-only channels) and truncates arrays longer than the channel.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from caproto import ChannelType
from p4p.client.thread import RemoteError

from harness import IocProcess, PyepicsClient, ca_pv, poll_until


def ca_value(ctx: Any, ioc: IocProcess, name: str) -> Any:
    data = ca_pv(ctx, ioc.pv(name)).read(timeout=10).data
    return data.tolist() if len(data) != 1 or name.startswith("WF_") else data[0]


#: (PV, value as caproto writes it, data type or None for native, reason in the IOC log).
CAPROTO_REFUSALS = [
    ("FLOAT", ["abc"], ChannelType.STRING, "could not convert string to float"),
    ("FLOAT", [150.0], None, "outside the limits -100 .. 100"),
    ("FLOAT", [1.0, 2.0], None, "expected a single value"),
    ("INT", [5000], None, "outside the limits -1000 .. 1000"),
    ("DRIVE", [60.0], None, "outside the limits -50 .. 50"),
    ("WF_F64", [0.0, 2000.0], None, "an element is outside the limits"),
    ("ENUM", [7], None, "Invalid enum index"),
    ("ENUM", ["BAD"], ChannelType.STRING, "Invalid enum string: 'BAD'"),
    ("BOOL", [2], None, "Invalid enum index"),
    ("WF_I32", list(range(9)), None, "array of 9 elements exceeds the maximum of 8"),
    ("STRING", ["x" * 50], None, "longer than the 39-byte limit"),
    ("EVEN", [3], None, "3 is odd; EVEN takes even numbers only"),
    ("RO_FLOAT", [1.0], None, "no write access"),
    ("RO_STRING", ["nope"], None, "no write access"),
]


@pytest.mark.parametrize(("name", "payload", "data_type", "reason"), CAPROTO_REFUSALS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CAPROTO_REFUSALS)])
def test_refused_over_caproto(allkinds: IocProcess, ca: Any, name: str, payload: list[Any],
                              data_type: ChannelType | None, reason: str) -> None:
    before = ca_value(ca, allkinds, name)
    chan = ca_pv(ca, allkinds.pv(name))
    response = chan.write(payload, data_type=data_type, wait=True, timeout=10)
    # like rsrv: ECA_NOWTACCESS for a client that writes without write access
    assert response.status.name == ("ECA_NOWTACCESS" if name.startswith("RO_")
                                    else "ECA_PUTFAIL")
    assert ca_value(ca, allkinds, name) == before
    allkinds.wait_for_log(f"put refused .*{re.escape(allkinds.pv(name))}: .*{re.escape(reason)}")


#: (PV, value p4p puts, part of the RemoteError message).
P4P_REFUSALS = [
    ("FLOAT", 150.0, "outside the limits -100 .. 100"),
    ("INT", -5000, "outside the limits -1000 .. 1000"),
    ("WF_F64", [0.0, -2000.0], "an element is outside the limits -1000 .. 1000"),
    ("ENUM", {"value.index": 9}, "index 9 is out of range 0..3"),
    ("BOOL", {"value.index": 2}, "index 2 is out of range 0..1"),
    ("WF_I32", list(range(9)), "array of 9 elements exceeds the maximum of 8"),
    ("STRING", "y" * 40, "string of 40 bytes is longer than the 39-byte limit"),
    ("STRING", "é" * 20, "string of 40 bytes"),
    ("EVEN", 5, "5 is odd; EVEN takes even numbers only"),
    ("RO_FLOAT", 1.0, "is read-only"),
    ("DRIVEN", 1.0, "is read-only"),
    ("HEARTBEAT", 1, "is read-only"),
]


@pytest.mark.parametrize(("name", "value", "message"), P4P_REFUSALS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(P4P_REFUSALS)])
def test_refused_over_p4p(allkinds: IocProcess, pva: Any, pva_raw: Any, name: str, value: Any,
                          message: str) -> None:
    before = pva_raw.get(allkinds.pv(name), timeout=10)["value"]
    with pytest.raises(RemoteError) as info:
        pva.put(allkinds.pv(name), value, timeout=10)
    assert allkinds.pv(name) in str(info.value)
    assert message in str(info.value)
    if name != "HEARTBEAT":
        after = pva_raw.get(allkinds.pv(name), timeout=10)["value"]
        assert str(after) == str(before)


def test_p4p_refuses_wrong_types_itself(allkinds: IocProcess, pva: Any) -> None:
    """p4p converts on the client: text for a number, an unknown state, an array for a
    scalar or an element out of the array's type range never leave it."""
    for name, value in (("FLOAT", "abc"), ("ENUM", "BAD"), ("FLOAT", [1.0, 2.0]),
                        ("WF_I16", [40000])):
        with pytest.raises((ValueError, TypeError, OverflowError)):
            pva.put(allkinds.pv(name), value, timeout=10)


#: (PV, value pyepics puts, message libca prints).
PYEPICS_REFUSALS = [
    ("FLOAT", 101.0, "101.0 is outside the limits -100 .. 100"),
    ("INT", 1001, "1001 is outside the limits -1000 .. 1000"),
    ("ENUM", 4, "Invalid enum index"),
    ("EVEN", 7, "7 is odd; EVEN takes even numbers only"),
    ("WF_F64", [5.0, 1001.0], "an element is outside the limits"),
]


@pytest.mark.parametrize(("name", "value", "message"), PYEPICS_REFUSALS,
                         ids=[c[0] for c in PYEPICS_REFUSALS])
def test_refused_over_pyepics(allkinds: IocProcess, pyepics: PyepicsClient, name: str,
                              value: Any, message: str) -> None:
    full = allkinds.pv(name)
    before = pyepics.get(full)["value"]
    assert pyepics.put(full, value, wait=True)["ret"] == 1  # put-callback status is ignored
    assert pyepics.get(full)["value"] == before
    pyepics.put(full, value, wait=False)  # a plain write: libca prints the server's message
    text = pyepics.wait_stderr(f"{full}: {message}")
    assert "Channel write request failed" in text
    assert pyepics.get(full)["value"] == before


def test_pyepics_refuses_itself(allkinds: IocProcess, pyepics: PyepicsClient) -> None:
    """libca/pyepics stop these before they reach the IOC."""
    denied = pyepics.put(allkinds.pv("RO_FLOAT"), 1.0, check=False)
    assert not denied["ok"] and "Write access denied" in denied["error"]
    too_long = pyepics.put(allkinds.pv("STRING"), "z" * 41, check=False)
    assert not too_long["ok"] and "too long" in too_long["error"]
    not_number = pyepics.put(allkinds.pv("FLOAT"), "abc", check=False)
    assert not not_number["ok"]
    assert pyepics.get(allkinds.pv("RO_FLOAT"))["value"] == 3.25


def test_validator_can_replace_the_value(allkinds: IocProcess, pva: Any, ca: Any,
                                         pyepics: PyepicsClient) -> None:
    """ROUNDED's validator returns round(value, 1): every client sees the replacement."""
    pva.put(allkinds.pv("ROUNDED"), 1.26, timeout=10)
    assert float(pva.get(allkinds.pv("ROUNDED"), timeout=10)) == 1.3
    ca_pv(ca, allkinds.pv("ROUNDED")).write([2.04], wait=True, timeout=10)
    assert pyepics.get(allkinds.pv("ROUNDED"))["value"] == 2.0


def test_refused_puts_run_no_hooks(allkinds: IocProcess, pva: Any) -> None:
    """A refused put to DRIVE does not run its on_put hook (PUT_COUNT unchanged)."""
    count = int(pva.get(allkinds.pv("PUT_COUNT"), timeout=10))
    with pytest.raises(RemoteError):
        pva.put(allkinds.pv("DRIVE"), 51.0, timeout=10)
    pva.put(allkinds.pv("DRIVE"), 2.0, timeout=10)
    assert int(pva.get(allkinds.pv("PUT_COUNT"), timeout=10)) == count + 1


def test_ioc_still_serves_after_refusals(allkinds: IocProcess, pyepics: PyepicsClient,
                                         ca: Any, pva: Any) -> None:
    assert allkinds.alive()
    assert pyepics.get(allkinds.pv("FLOAT"))["value"] == 1.5
    pva.put(allkinds.pv("INT"), 8, timeout=10)
    assert ca_value(ca, allkinds, "INT") == 8
    heartbeat = int(pva.get(allkinds.pv("HEARTBEAT"), timeout=10))
    poll_until(lambda: int(pva.get(allkinds.pv("HEARTBEAT"), timeout=10)) > heartbeat,
               timeout=10, message="heartbeat advances")
    assert "Traceback" not in allkinds.log_text()
