"""The CA hot lane (reads, subscriptions, cancels and puts answered from their
bytes) answers exactly as caproto's command path does, and leaves the same state.

The same requests go to two circuits, one with the hot lane and one without
(``Circuit.hot_lane = False``): every reply byte must be equal, the
subscriptions the same, and the hot circuit must really have taken the lane
(its subscriptions are recorded from :class:`podioc.protocols.ca.wire.Hot`
tuples, not caproto command objects). Then monitors made and cancelled in the
lane get, and stop getting, updates. No timing.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import caproto as ca
import numpy as np

from harness.inproc import InProcessCircuit, open_circuit
from podioc import IOC, pv
from podioc.protocols.ca import hotlane
from podioc.protocols.ca.circuit import Circuit
from podioc.protocols.ca.wire import Hot

answer = hotlane.answer

DBR_STRING, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_LONG, DBR_DOUBLE = 0, 1, 2, 3, 5, 6
DBR_STS_DOUBLE, DBR_GR_FLOAT, DBR_CTRL_DOUBLE = 13, 23, 34
DBR_CTRL_ENUM = 31
DONE = 9999  # the I/O id of the read that ends each batch


class Hot3(IOC):
    x = pv.float(1.5, name="X", writable=True, units="mm", precision=3,
                 limits=(-10.0, 10.0))
    mode = pv.enum(["Off", "On"], name="MODE", writable=True)
    wave = pv.waveform(10, np.arange(10, dtype=np.float64), dtype="float64", name="WAVE",
                       writable=True)
    n = pv.int(0, name="N", writable=True)
    label = pv.string("abc", name="LABEL")
    # its body (16.8 KB) is larger than fastpath keeps: subscriptions take the full path
    big = pv.waveform(2100, np.zeros(2100), dtype="float64", name="BIG")


def _libca_string(command: int, text: bytes, sid: int, ioid: int) -> bytes:
    """A put of one DBR_STRING as libca sends it: the text and its NUL, padded to 8
    (caproto's requests carry all 40 bytes)."""
    payload = text + b"\0" * (8 - len(text) % 8)
    return struct.pack(">HHHHII", command, len(payload), DBR_STRING, 1, sid, ioid) + payload


def _batches(x: int, mode: int, wave: int, n: int, label: int, big: int
             ) -> list[list[Any]]:
    """Requests in batches: reads twice (the second from the kept body), adds and
    cancels of several kinds (the last of a kind takes the full path)."""
    reads = [ca.ReadNotifyRequest(t, 0, sid, 10 * sid + t)
             for sid in (x, wave) for t in (DBR_DOUBLE, DBR_STS_DOUBLE, DBR_GR_FLOAT,
                                            DBR_CTRL_DOUBLE, DBR_STRING)]
    reads += [ca.ReadNotifyRequest(DBR_CTRL_ENUM, 1, mode, 1), ca.ReadNotifyRequest(
        DBR_DOUBLE, 4, wave, 2), ca.ReadNotifyRequest(DBR_DOUBLE, 1, label, 3)]  # GETFAIL
    adds = [ca.EventAddRequest(DBR_GR_FLOAT, 1, x, subid, 0, 0, 0, 5) for subid in range(1, 6)]
    adds += [ca.EventAddRequest(DBR_CTRL_ENUM, 1, mode, 6, 0, 0, 0, 5),
             ca.EventAddRequest(DBR_CTRL_ENUM, 1, mode, 7, 0, 0, 0, 5),
             ca.EventAddRequest(DBR_DOUBLE, 3, wave, 8, 0, 0, 0, 1),
             ca.EventAddRequest(DBR_DOUBLE, 3, wave, 9, 0, 0, 0, 1)]
    cancels = [ca.EventCancelRequest(DBR_GR_FLOAT, x, subid) for subid in (2, 1, 5, 4, 3)]
    cancels += [ca.EventCancelRequest(DBR_CTRL_ENUM, mode, 7),
                ca.EventCancelRequest(DBR_DOUBLE, wave, 8)]
    # made on the full path (no kept body) and cancelled in the same batch: the
    # cancel must wait for the add's reply (a caproto object, sent at the flush)
    made_and_cancelled = [ca.EventAddRequest(DBR_DOUBLE, 0, big, 30, 0, 0, 0, 5),
                          ca.EventAddRequest(DBR_DOUBLE, 0, big, 31, 0, 0, 0, 5),
                          ca.EventCancelRequest(DBR_DOUBLE, big, 30)]
    # puts, before any subscription (whose updates would interleave by timing):
    # accepted ones in the lane, refused ones (limits, text, type) on the full path
    puts = [ca.WriteNotifyRequest([2.5], DBR_DOUBLE, 1, x, 101),
            ca.WriteRequest([3.5], DBR_DOUBLE, 1, x, 0),
            ca.WriteNotifyRequest([99.0], DBR_DOUBLE, 1, x, 102),  # beyond the limits
            ca.WriteNotifyRequest([b"4.25"], DBR_STRING, 1, x, 103),
            ca.WriteNotifyRequest([b"abc"], DBR_STRING, 1, x, 104),  # not a number
            ca.WriteNotifyRequest([b""], DBR_STRING, 1, x, 114),  # caproto: 0.0
            ca.WriteRequest([b" -1.5e0 "], DBR_STRING, 1, x, 0),
            ca.WriteNotifyRequest([b"12"], DBR_STRING, 1, n, 115),  # the full path's
            _libca_string(19, b"5.5", x, 116), _libca_string(4, b"-0.25", x, 0),
            _libca_string(19, b"x", x, 117), _libca_string(19, b"On", mode, 118),
            _libca_string(19, b"13", n, 119),
            ca.WriteNotifyRequest([1], DBR_ENUM, 1, mode, 105),
            ca.WriteNotifyRequest([b"Off"], DBR_STRING, 1, mode, 106),
            ca.WriteNotifyRequest([b"Maybe"], DBR_STRING, 1, mode, 107),  # no such state
            ca.WriteNotifyRequest([0.5, 1.5, 2.5], DBR_DOUBLE, 3, wave, 108),
            ca.WriteNotifyRequest([0.1], DBR_FLOAT, 1, x, 110),  # unpacked, not converted
            ca.WriteRequest([-3], DBR_SHORT, 1, x, 0),
            ca.WriteNotifyRequest([-70000], DBR_LONG, 1, n, 111),
            ca.WriteRequest([-5], DBR_SHORT, 1, n, 0),
            ca.WriteNotifyRequest([2.75], DBR_DOUBLE, 1, n, 112),  # caproto's conversion
            ca.WriteNotifyRequest([4.0], DBR_FLOAT, 1, n, 113),
            ca.WriteRequest([7], DBR_LONG, 1, x, 0),
            ca.WriteNotifyRequest([1.25], DBR_STS_DOUBLE, 1, x, 109)]  # not a plain type
    # new channels: to PVs by their own names in the lane; a field, an unknown name
    # and a name with a modifier on the full path
    creates = [ca.CreateChanRequest(name, cid, 13) for cid, name in enumerate(
        ["HL:X", "HL:N", "HL:X.DESC", "HL:NOPE", "HL:BIG", "HL:LABEL$"], start=10)]
    return [creates, puts, reads, reads, adds, made_and_cancelled, cancels[:3], adds[:2],
            cancels[3:], adds[8:]]


async def _until_done(opened: InProcessCircuit) -> bytes:
    """Every byte the circuit sent, up to and including the reply to read DONE."""
    loop = asyncio.get_running_loop()
    got = b""
    while True:
        got += await asyncio.wait_for(loop.sock_recv(opened.client, 1 << 20), 10)
        offset, last = 0, None
        while offset + 16 <= len(got):
            cmd, size, _, _, _, p2 = struct.unpack_from(">HHHHII", got, offset)
            last = (cmd, p2)
            offset += 16 + size
        if offset == len(got) and last == (ca.ReadNotifyResponse.ID, DONE):
            return got


async def _run(hot: bool) -> dict[str, Any]:
    answered: dict[int, int] = {}  # requests answered in the lane, by command

    def counted(circuit: Any, hot: Hot, settled: bool) -> bytes | None:
        reply = answer(circuit, hot, settled)
        if reply is not None:
            answered[hot.command] = answered.get(hot.command, 0) + 1
        return reply

    hotlane.answer = counted
    Circuit.hot_lane = hot  # from the first request: the channels' creation too
    try:
        return {**await _serve(hot), "answered": answered}
    finally:
        hotlane.answer = answer
        Circuit.hot_lane = True


async def _serve(hot: bool) -> dict[str, Any]:
    ioc = Hot3("HL:")
    # the replies to these creations are the first batch's first bytes; all take the
    # full path (the circuit is not CONNECTED until its version reply is sent)
    opened = await open_circuit(ioc, ["HL:X", "HL:MODE", "HL:WAVE", "HL:N", "HL:LABEL",
                                      "HL:BIG", "HL:X.DESC", "HL:NOPE", "HL:LABEL$"])
    history: list[tuple[str, Any, str]] = []  # every value stored, with its type
    for each in ioc.pvs.values():
        each.subscribe(lambda p: history.append(
            (p.name, np.asarray(p.value).tolist(), type(p.value).__name__)))
    try:
        x, mode, wave, n, label, big = (opened.sid(i) for i in range(1, 7))
        wire: list[bytes] = []
        kinds: list[set[str]] = []
        for batch in _batches(x, mode, wave, n, label, big):
            await opened.send(*batch, ca.ReadNotifyRequest(DBR_DOUBLE, 1, x, DONE))
            wire.append(await _until_done(opened))
            kinds.append({type(c).__name__
                          for c in opened.circuit.circuit.event_add_commands.values()})
        state = opened.circuit.circuit
        return {
            "wire": wire, "kinds": kinds, "history": history,
            "values": {name: np.asarray(pv.value).tolist() for name, pv in ioc.pvs.items()},
            "subscribed": sorted(state.event_add_commands),
            "channels": {cid: (c.name, c.sid, int(c.native_data_type), c.native_data_count,
                               int(c.access_rights), tuple(c.states.states.items()))
                         for cid, c in state.channels.items()},
            "rights_sent": dict(opened.circuit.rights_sent),
            "circuit_subs": sorted(s.subscriptionid for subs in
                                   opened.circuit.subscriptions.values() for s in subs),
            "context_subs": sorted(s.subscriptionid for subs in
                                   opened.ctx.subscriptions.values() for s in subs),
            "indexed": sorted(i for i in range(100) if opened.circuit.sub_index.indexed(i)),
        }
    finally:
        opened.close()


def test_hot_lane_answers_byte_for_byte_as_the_command_path() -> None:
    hot, full = asyncio.run(_run(True)), asyncio.run(_run(False))
    assert len(hot["wire"]) == len(full["wire"])
    for number, (got, want) in enumerate(zip(hot["wire"], full["wire"], strict=True)):
        assert got == want, f"batch {number}: the hot lane's replies differ"
    for key in ("subscribed", "circuit_subs", "context_subs", "indexed", "values", "history",
                "channels", "rights_sent"):
        assert hot[key] == full[key], key
    assert hot["subscribed"] == [1, 2, 6, 9, 31]  # 9 was added twice: the second replaced it
    assert "Hot" in hot["kinds"][4], "the hot circuit did not take the lane"
    assert all("Hot" not in kinds for kinds in full["kinds"])
    assert hot["values"]["HL:X"] == 7.0 and hot["values"]["HL:MODE"] == "Off"  # STS: refused
    assert hot["values"]["HL:WAVE"][:3] == [0.5, 1.5, 2.5]
    assert ("HL:X", float(np.float32(0.1)), "float") in hot["history"]
    assert [h[1:] for h in hot["history"] if h[0] == "HL:N"] == [
        (12, "int"), (13, "int"), (-70000, "int"), (-5, "int"), (2, "int"), (4, "int")]
    assert [h[1] for h in hot["history"] if h[0] == "HL:X"][:7] == [2.5, 3.5, 4.25, 0.0, -1.5, 5.5,
                                                                  -0.25]
    assert sorted(hot["channels"]) == [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 14]  # no such: 8, 9...
    # in the lane: the three later channels to PVs by their own names;
    # every read (24 + the 10 DONE reads) but LABEL's as a double, which
    # fails; every add (9 + 2 re-adds) but 9's second, a duplicate id, and BIG's; every
    # cancel (none was the last of its kind) but 30's, which follows its add's reply
    # object; the accepted puts of plain types (14 WRITE_NOTIFY, 6 WRITE)
    assert hot["answered"] == {18: 3, 15: 34, 1: 11, 2: 7, 19: 14, 4: 6}
    assert full["answered"] == {}


async def _monitors() -> dict[str, Any]:
    ioc = Hot3("HM:")
    opened = await open_circuit(ioc, ["HM:X"])
    try:
        x = opened.sid(1)
        await opened.send(*(ca.EventAddRequest(DBR_GR_FLOAT, 1, x, subid, 0, 0, 0, 5)
                            for subid in (1, 2, 3)))
        first = await opened.replies((ca.EventAddResponse.ID,), 3)
        lane = sorted(k for k, v in opened.circuit.circuit.event_add_commands.items()
                      if type(v) is Hot)
        ioc.pvs["HM:X"].set(2.5)
        changed = await opened.replies((ca.EventAddResponse.ID,), 3)
        await opened.send(ca.EventCancelRequest(DBR_GR_FLOAT, x, 2))
        cancelled = await opened.replies((ca.EventAddResponse.ID,), 1)
        ioc.pvs["HM:X"].set(3.5)
        await opened.send(ca.ReadNotifyRequest(DBR_DOUBLE, 1, x, DONE))
        after = await opened.replies((ca.EventAddResponse.ID, ca.ReadNotifyResponse.ID), 3)
        return {"first": first, "lane": lane, "changed": changed, "cancelled": cancelled,
                "after": after}
    finally:
        opened.close()


def _value(payload: bytes) -> float:
    """The value of a DBR_GR_FLOAT body (after its 40 bytes of metadata)."""
    return float(struct.unpack_from(">f", payload, 40)[0])


def test_monitors_made_and_cancelled_in_the_lane_update_and_stop() -> None:
    got = asyncio.run(_monitors())
    assert [m[2] for m in got["first"]] == [1, 2, 3]
    assert got["lane"] == [1, 2, 3]
    assert sorted(m[2] for m in got["changed"]) == [1, 2, 3]
    assert {_value(m[3]) for m in got["changed"]} == {2.5}
    assert got["cancelled"][0][2] == 2 and got["cancelled"][0][3] == b""  # the cancel reply
    after = got["after"]
    assert sorted((m[0], m[2]) for m in after) == [(1, 1), (1, 3), (15, DONE)]
    assert {_value(m[3]) for m in after if m[0] == 1} == {3.5}
