"""EPICS clients run inside a test namespace: ``python netns_client.py '<json spec>'``.

The spec's ``op`` selects what to do; the result is one JSON line on stdout
(``watch_ca`` prints one line per event until its duration ends). Clients
read their settings from the environment the test gives the process, so
"default settings" means no EPICS_* variable at all.

- ``find_ca`` names, timeout: pyepics; which PVs connect, to which host:port,
  and the seconds until the last one connected.
- ``find_pva`` names, timeout: p4p; the same (host is not reported).
- ``rw_ca`` / ``rw_pva`` rw, ro, value, monitor_s: get, put (wait) and read
  back ``rw``; count monitor updates of ``ro`` for ``monitor_s`` seconds.
- ``beacons`` port, duration: CA beacons received on UDP ``port``.
- ``search`` address, port, name, timeout, repeat: raw CA searches by UDP
  unicast, each from a new socket; the answers (source, advertised TCP port
  and address) of the first (``answers``) and of every round (``rounds``).
- ``watch_ca`` name, duration: pyepics monitor; events as JSON lines.
- ``hold`` address, ca_port, name, ca, subscribed, pva, duration: ``ca`` raw CA
  circuits each with a channel of ``name`` (the first ``subscribed`` of them
  monitoring it) and ``pva`` p4p contexts monitoring it; prints one line once
  all are connected, then holds them for ``duration`` s.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from typing import Any

HEADER = struct.Struct(">HHHHII")


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def find_ca(spec: dict[str, Any]) -> dict[str, Any]:
    import epics

    names: list[str] = spec["names"]
    connected: dict[str, float] = {}
    lock = threading.Lock()
    start = time.monotonic()

    def on_conn(pvname: str = "", conn: bool = False, **_: Any) -> None:
        if conn:
            with lock:
                connected.setdefault(pvname, time.monotonic() - start)

    pvs = [epics.PV(n, auto_monitor=False, connection_callback=on_conn) for n in names]
    deadline = start + spec.get("timeout", 10)
    while time.monotonic() < deadline and len(connected) < len(names):
        epics.ca.pend_event(0.01)  # also flushes libca's TCP requests (name servers)
    with lock:
        found = {pv.pvname: (pv.host if pv.pvname in connected else None) for pv in pvs}
        last = max(connected.values()) if len(connected) == len(names) else None
    return {"found": found, "elapsed": last}


def _pva_context(spec: dict[str, Any]) -> Any:
    from p4p.client.thread import Context

    conf = spec.get("conf")
    return Context("pva", conf=conf, useenv=conf is None)


def find_pva(spec: dict[str, Any]) -> dict[str, Any]:
    names: list[str] = spec["names"]
    ctx = _pva_context(spec)
    start = time.monotonic()
    values = ctx.get(names, timeout=spec.get("timeout", 10), throw=False)
    elapsed = time.monotonic() - start
    found = {n: not isinstance(v, Exception) for n, v in zip(names, values, strict=True)}
    errors = {n: str(v) for n, v in zip(names, values, strict=True) if isinstance(v, Exception)}
    ctx.close()
    return {"found": found, "elapsed": elapsed if all(found.values()) else None,
            "errors": errors}


def rw_ca(spec: dict[str, Any]) -> dict[str, Any]:
    import epics

    rw = epics.PV(spec["rw"])
    ro = epics.PV(spec["ro"])
    if not (rw.wait_for_connection(10) and ro.wait_for_connection(10)):
        return {"error": "not connected"}
    before = rw.get(timeout=5)
    rw.put(spec["value"], wait=True, timeout=5)
    after = epics.caget(spec["rw"], timeout=5, use_monitor=False)
    updates: list[float] = []
    ro.add_callback(lambda value=None, **_: updates.append(float(value)))
    time.sleep(spec.get("monitor_s", 1.0))
    return {"before": before, "after": after, "updates": len(updates), "host": rw.host}


def rw_pva(spec: dict[str, Any]) -> dict[str, Any]:
    ctx = _pva_context(spec)
    before = float(ctx.get(spec["rw"], timeout=10))
    ctx.put(spec["rw"], spec["value"], timeout=5, wait=True)
    after = float(ctx.get(spec["rw"], timeout=5))
    updates: list[float] = []
    sub = ctx.monitor(spec["ro"], lambda v: updates.append(float(v)))
    time.sleep(spec.get("monitor_s", 1.0))
    sub.close()
    ctx.close()
    return {"before": before, "after": after, "updates": len(updates)}


def beacons(spec: dict[str, Any]) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", spec["port"]))
    deadline = time.monotonic() + spec["duration"]
    seen: list[dict[str, Any]] = []
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, src = sock.recvfrom(65536)
        except TimeoutError:
            break
        offset = 0
        while offset + HEADER.size <= len(data):
            cmd, size, _version, port, bid, addr = HEADER.unpack_from(data, offset)
            offset += HEADER.size + size
            if cmd == 13:
                seen.append({"src": src[0], "server_port": port, "id": bid,
                             "address": socket.inet_ntoa(struct.pack(">I", addr))})
    return {"beacons": seen}


def _search_once(spec: dict[str, Any], msg: bytes) -> list[dict[str, Any]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port each time
    sock.sendto(msg, (spec["address"], spec["port"]))
    deadline = time.monotonic() + spec.get("timeout", 2.0)
    answers = []
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, src = sock.recvfrom(65536)
        except TimeoutError:
            break
        offset = 0
        while offset + HEADER.size <= len(data):
            cmd, size, dtype, _count, p1, p2 = HEADER.unpack_from(data, offset)
            offset += HEADER.size + size
            if cmd == 6 and p2 == 77:
                answers.append({"src": f"{src[0]}:{src[1]}", "tcp_port": dtype,
                                "address": socket.inet_ntoa(struct.pack(">I", p1))})
    sock.close()
    return answers


def search(spec: dict[str, Any]) -> dict[str, Any]:
    name = spec["name"].encode() + b"\0"
    name += b"\0" * (-len(name) % 8)
    msg = HEADER.pack(0, 0, 0, 13, 0, 0) + HEADER.pack(6, len(name), 5, 13, 77, 77) + name
    rounds = [_search_once(spec, msg) for _ in range(spec.get("repeat", 1))]
    return {"answers": rounds[0], "rounds": rounds}


def watch_ca(spec: dict[str, Any]) -> None:
    import epics

    start = time.monotonic()

    def on_conn(conn: bool = False, **_: Any) -> None:
        emit({"t": time.monotonic() - start, "event": "connected" if conn else "disconnected"})

    def on_value(value: Any = None, **_: Any) -> None:
        emit({"t": time.monotonic() - start, "event": "value", "value": float(value)})

    epics.PV(spec["name"], callback=on_value, connection_callback=on_conn)
    emit({"t": 0.0, "event": "started"})
    time.sleep(spec["duration"])


def _ca_message(command: int, payload: bytes = b"", data_type: int = 0, count: int = 0,
                p1: int = 0, p2: int = 0) -> bytes:
    payload += b"\0" * (-len(payload) % 8)
    return HEADER.pack(command, len(payload), data_type, count, p1, p2) + payload


def _ca_circuit(address: str, port: int, name: str, cid: int, subscribe: bool
                ) -> socket.socket:
    """A raw CA circuit with one channel (and a monitor of it); the reply is read."""
    sock = socket.create_connection((address, port), timeout=10)
    sock.sendall(_ca_message(0, b"", 1, 13, 0, 0) + _ca_message(21, b"holder")
                 + _ca_message(20, b"holder") + _ca_message(18, name.encode(), 0, 0, cid, 13))
    data = b""
    while True:
        data += sock.recv(65536)
        offset = 0
        while offset + 16 <= len(data):
            command, size, _, _, _, p2 = HEADER.unpack_from(data, offset)
            if command == 18:  # CREATE_CHAN reply: p2 is the sid
                if subscribe:  # EVENT_ADD of DBR_DOUBLE, mask DBE_VALUE
                    sock.sendall(HEADER.pack(1, 16, 6, 1, p2, 1) + struct.pack(">fffHxx",
                                                                              0, 0, 0, 1))
                return sock
            offset += 16 + size


def hold(spec: dict[str, Any]) -> None:
    circuits = [_ca_circuit(spec["address"], spec["ca_port"], spec["name"], k + 1,
                            k < spec["subscribed"]) for k in range(spec["ca"])]
    contexts = []
    for _ in range(spec["pva"]):
        seen = threading.Event()
        ctx = _pva_context(spec)
        ctx.monitor(spec["name"], lambda _v, seen=seen: seen.set())
        if not seen.wait(15):
            raise SystemExit("no PVA monitor update within 15 s")
        contexts.append(ctx)
    emit({"event": "ready", "ca": len(circuits), "pva": len(contexts)})
    time.sleep(spec["duration"])


OPS = {"find_ca": find_ca, "find_pva": find_pva, "rw_ca": rw_ca, "rw_pva": rw_pva,
       "beacons": beacons, "search": search}


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec["op"] in ("watch_ca", "hold"):
        (watch_ca if spec["op"] == "watch_ca" else hold)(spec)
        return
    emit(OPS[spec["op"]](spec))


if __name__ == "__main__":
    main()
