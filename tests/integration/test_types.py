"""Get, put and monitor every PV kind over CA (pyepics, caproto) and PVA (p4p)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest
from caproto import ChannelType
from p4p.nt.scalar import ntstr

from harness import IocProcess, MonitorQueue, PyepicsClient, ca_pv

#: Initial values of the AllKinds IOC, as plain Python (enums as indices).
INITIAL: dict[str, Any] = {
    "FLOAT": 1.5, "INT": 7, "BOOL": 0, "ENUM": 1, "STRING": "hello",
    "RO_FLOAT": 3.25, "RO_STRING": "fixed",
    "WF_F64": [1.0, 2.0, 3.0], "WF_F32": [0.5, 1.5], "WF_I32": [1, 2, 3],
    "WF_I16": [-1, 0, 1], "WF_U8": [1, 2, 255],
}

#: Per client, a distinct value per writable PV (exact in the element type).
PUTS: dict[str, dict[str, Any]] = {
    "pyepics": {"FLOAT": 12.25, "INT": -42, "BOOL": 1, "ENUM": 3, "STRING": "world",
                "WF_F64": [1.5, -2.5, 3.0, 4.0], "WF_F32": [0.25, -8.5],
                "WF_I32": [10, -20, 30, 99], "WF_I16": [-32768, 32767, 5],
                "WF_U8": [0, 128, 255, 7]},
    "caproto": {"FLOAT": -0.125, "INT": 999, "BOOL": 0, "ENUM": 0, "STRING": "caproto was here",
                "WF_F64": [8.0], "WF_F32": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                "WF_I32": [-7, 7], "WF_I16": [100, 200, 300], "WF_U8": [9, 8, 7, 6, 5]},
    "p4p": {"FLOAT": 99.5, "INT": -1000, "BOOL": 1, "ENUM": 2, "STRING": "p4p: ok",
            "WF_F64": [0.0, 1e-3, -1e3], "WF_F32": [-0.5], "WF_I32": [0, 0, 0, 0, 0, 0, 0, 1],
            "WF_I16": [12, -12], "WF_U8": [200, 100]},
}
WRITABLE = list(PUTS["p4p"])


def plain(value: Any) -> Any:
    """Numpy arrays and scalars as Python lists and numbers; bytes as str."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bytes):
        return value.decode()
    return value


def ca_plain(response: Any, name: str) -> Any:
    """A caproto read/monitor response as plain Python (scalars unwrapped)."""
    data = plain(response.data)
    if name.startswith("WF_"):
        return data
    value = data[0]
    return value.decode() if isinstance(value, bytes) else value


def pva_equals(expected: Any, value: Any) -> bool:
    """True when the p4p value ``value`` is ``expected`` as plain Python."""
    return bool(pva_plain(value) == expected)


def pva_plain(value: Any) -> Any:
    """A p4p (NT-unwrapped) value as plain Python; enums as their index."""
    if type(value).__name__ == "ntenum":
        return int(value.raw["value.index"])
    if isinstance(value, ntstr):
        return value.raw["value"]  # str(ntstr) prefixes the timestamp
    return plain(value)


# -- gets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(INITIAL))
def test_initial_values_agree_on_all_clients(allkinds: IocProcess, pyepics: PyepicsClient,
                                             ca: Any, pva: Any, name: str) -> None:
    """Runs first in this module, before any put."""
    full = allkinds.pv(name)
    assert pyepics.get(full)["value"] == INITIAL[name]
    assert ca_plain(ca_pv(ca, full).read(timeout=10), name) == INITIAL[name]
    assert pva_plain(pva.get(full, timeout=10)) == INITIAL[name]


def test_native_types_on_ca(allkinds: IocProcess, ca: Any) -> None:
    expected = {"FLOAT": ChannelType.DOUBLE, "INT": ChannelType.LONG, "BOOL": ChannelType.ENUM,
                "ENUM": ChannelType.ENUM, "STRING": ChannelType.STRING,
                "WF_F64": ChannelType.DOUBLE, "WF_F32": ChannelType.FLOAT,
                "WF_I32": ChannelType.LONG, "WF_I16": ChannelType.INT,
                "WF_U8": ChannelType.CHAR}
    for name, ctype in expected.items():
        chan = ca_pv(ca, allkinds.pv(name))
        assert chan.channel.native_data_type == ctype, name
        assert chan.channel.native_data_count == (8 if name.startswith("WF_") else 1), name


def test_native_types_on_pva(allkinds: IocProcess, pva_raw: Any) -> None:
    expected = {"FLOAT": "d", "INT": "i", "STRING": "s", "WF_F64": "ad", "WF_F32": "af",
                "WF_I32": "ai", "WF_I16": "ah", "WF_U8": "aB"}
    for name, code in expected.items():
        value = pva_raw.get(allkinds.pv(name), timeout=10)
        assert value.getID().startswith("epics:nt/NTScalar"), name
        assert value.type()["value"] == code, name
    for name in ("BOOL", "ENUM"):
        value = pva_raw.get(allkinds.pv(name), timeout=10)
        assert value.getID().startswith("epics:nt/NTEnum"), name


# -- puts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", WRITABLE)
def test_put_get_pyepics(allkinds: IocProcess, pyepics: PyepicsClient, pva: Any,
                         name: str) -> None:
    value = PUTS["pyepics"][name]
    pyepics.put(allkinds.pv(name), value, wait=True)
    assert pyepics.get(allkinds.pv(name))["value"] == value
    assert pva_plain(pva.get(allkinds.pv(name), timeout=10)) == value


@pytest.mark.parametrize("name", WRITABLE)
def test_put_get_caproto(allkinds: IocProcess, ca: Any, pva: Any, name: str) -> None:
    value = PUTS["caproto"][name]
    chan = ca_pv(ca, allkinds.pv(name))
    payload = value if isinstance(value, list) else [value]
    response = chan.write(payload, wait=True, timeout=10)
    assert response.status.name == "ECA_NORMAL"
    assert ca_plain(chan.read(timeout=10), name) == value
    assert pva_plain(pva.get(allkinds.pv(name), timeout=10)) == value


@pytest.mark.parametrize("name", WRITABLE)
def test_put_get_p4p(allkinds: IocProcess, pyepics: PyepicsClient, pva: Any, name: str) -> None:
    value = PUTS["p4p"][name]
    pva.put(allkinds.pv(name), value, timeout=10)
    assert pva_plain(pva.get(allkinds.pv(name), timeout=10)) == value
    assert pyepics.get(allkinds.pv(name))["value"] == value


def test_enum_by_state_name_on_every_client(allkinds: IocProcess, pyepics: PyepicsClient,
                                            ca: Any, pva: Any) -> None:
    name = allkinds.pv("ENUM")
    pyepics.put(name, "TWO", wait=True)
    assert pyepics.get(name, as_string=True)["value"] == "TWO"
    chan = ca_pv(ca, name)
    assert chan.write(["THREE"], data_type=ChannelType.STRING, wait=True,
                      timeout=10).status.name == "ECA_NORMAL"
    assert chan.read(data_type=ChannelType.STRING, timeout=10).data == [b"THREE"]
    pva.put(name, "ZERO", timeout=10)
    assert str(pva.get(name, timeout=10)) == "ZERO"
    assert pyepics.get(name)["value"] == 0


def test_bool_by_state_name(allkinds: IocProcess, pyepics: PyepicsClient, pva: Any) -> None:
    name = allkinds.pv("BOOL")
    pva.put(name, "On", timeout=10)
    assert pyepics.get(name, as_string=True)["value"] == "On"
    pyepics.put(name, "Off", wait=True)
    assert pva_plain(pva.get(name, timeout=10)) == 0


def test_numbers_as_strings_over_ca(allkinds: IocProcess, ca: Any) -> None:
    """A CA client may write DBR_STRING to a numeric PV; the server parses it."""
    chan = ca_pv(ca, allkinds.pv("FLOAT"))
    assert chan.write(["42.5"], data_type=ChannelType.STRING, wait=True,
                      timeout=10).status.name == "ECA_NORMAL"
    assert chan.read(timeout=10).data[0] == 42.5


def test_string_with_utf8(allkinds: IocProcess, pyepics: PyepicsClient, pva: Any) -> None:
    name = allkinds.pv("STRING")
    pva.put(name, "µA ±5 °C", timeout=10)
    assert pva_plain(pva.get(name, timeout=10)) == "µA ±5 °C"
    assert pyepics.get(name)["value"] == "µA ±5 °C"


def test_empty_array(allkinds: IocProcess, pva: Any, ca: Any) -> None:
    name = allkinds.pv("WF_F64")
    pva.put(name, [], timeout=10)
    assert plain(pva.get(name, timeout=10)) == []
    assert plain(ca_pv(ca, name).read(timeout=10).data) == []


# -- monitors --------------------------------------------------------------------------------
MONITORED = ["FLOAT", "INT", "ENUM", "STRING", "WF_F64", "WF_I16", "WF_U8"]


@pytest.mark.parametrize("name", MONITORED)
def test_monitor_pyepics(allkinds: IocProcess, pyepics: PyepicsClient, pva: Any,
                         pva_raw: Any, name: str) -> None:
    full = allkinds.pv(name)
    sub = pyepics.subscribe(full)
    value = PUTS["pyepics"][name]
    pva.put(full, PUTS["p4p"][name], timeout=10)
    pyepics.put(full, value, wait=True)
    updates = pyepics.updates(sub, 3, timeout=10)
    assert [u["value"] for u in updates[-2:]] == [PUTS["p4p"][name], value]
    # The monitor's timestamp is the change's: PVA reports the same to the ns, and
    # it is now (not 0, not 1990 or 1970).
    seen = int(updates[-1]["posixseconds"]) * 10**9 + int(updates[-1]["nanoseconds"])
    stamp = pva_raw.get(full, timeout=10)["timeStamp"]
    assert seen == stamp["secondsPastEpoch"] * 10**9 + stamp["nanoseconds"]
    assert abs(seen / 1e9 - time.time()) < 60
    pyepics.call("unsubscribe", id=sub)


@pytest.mark.parametrize("name", MONITORED)
def test_monitor_caproto(allkinds: IocProcess, ca: Any, pva: Any, name: str) -> None:
    full = allkinds.pv(name)
    chan = ca_pv(ca, full)
    queue = MonitorQueue()
    sub = chan.subscribe(data_type="time")
    sub.add_callback(queue)
    try:
        queue.wait_count(1)
        pva.put(full, PUTS["caproto"][name], timeout=10)
        queue.wait_for(lambda r: ca_plain(r, name) == PUTS["caproto"][name])
        pva.put(full, PUTS["p4p"][name], timeout=10)
        last = queue.wait_for(lambda r: ca_plain(r, name) == PUTS["p4p"][name])
        assert last.metadata.timestamp > 0
    finally:
        sub.clear()


@pytest.mark.parametrize("name", MONITORED)
def test_monitor_p4p(allkinds: IocProcess, ca: Any, pva: Any, name: str) -> None:
    full = allkinds.pv(name)
    queue = MonitorQueue()
    sub = pva.monitor(full, queue, notify_disconnect=False)
    try:
        queue.wait_count(1)
        chan = ca_pv(ca, full)
        for value in (PUTS["caproto"][name], PUTS["p4p"][name]):
            payload = value if isinstance(value, list) else [value]
            assert chan.write(payload, wait=True, timeout=10).status.name == "ECA_NORMAL"
            queue.wait_for(partial(pva_equals, value))
    finally:
        sub.close()


def test_monitor_sees_scan_updates(allkinds: IocProcess, pyepics: PyepicsClient,
                                   pva: Any) -> None:
    """TICKS is set by a 0.2 s scan: both protocols deliver increasing values."""
    sub = pyepics.subscribe(allkinds.pv("TICKS"))
    queue = MonitorQueue()
    psub = pva.monitor(allkinds.pv("TICKS"), queue, notify_disconnect=False)
    try:
        ticks = [u["value"] for u in pyepics.updates(sub, 4, timeout=10)]
        assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)
        values = [int(v) for v in queue.wait_count(4)]
        assert values == sorted(values) and len(set(values)) == len(values)
    finally:
        psub.close()
        pyepics.call("unsubscribe", id=sub)
