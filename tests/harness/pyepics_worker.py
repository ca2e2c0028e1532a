"""A pyepics (libca) client in its own process, driven by JSON lines.

libca reads the EPICS_* environment once per process, so every test IOC
(with its own ports) needs its own pyepics process. The parent
(:class:`harness.clients.PyepicsClient`) starts this script with the IOC's
client environment and sends one JSON object per line; each gets one JSON
line back: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

Operations (``op``):
- ``get``: pv, timeout, as_string, ctrl (add ``get_ctrlvars()``), count
- ``info``: pv, timeout: connection, access rights, type, count
- ``put``: pv, value, wait, timeout
- ``subscribe``: pv, id, timeout, as_string: monitor; returns after the first update
- ``updates``: id, count, timeout: wait for ``count`` updates (including the first)
- ``unsubscribe``: id
- ``stderr``: libca's output so far; ``wait_stderr``: contains, timeout
- ``exit``

Usage: ``python pyepics_worker.py STDERR_FILE``. Before libca loads, fds 1
and 2 are pointed at STDERR_FILE (libca prints there) and the protocol uses
a private copy of the original stdout. pyepics turns libca's messages off
by default; they are turned on here so a refused put's message is visible.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from typing import Any


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


class Worker:
    """Executes operations with pyepics; one instance per process."""

    def __init__(self, stderr_path: str) -> None:
        self.stderr_path = stderr_path
        import epics

        epics.ca.WITH_CA_MESSAGES = True  # must be set before libca is initialised
        self.epics = epics
        self.pvs: dict[str, Any] = {}
        self.subs: dict[str, tuple[Any, list[dict[str, Any]], threading.Condition]] = {}

    def _pv(self, name: str, timeout: float) -> Any:
        pv = self.pvs.get(name)
        if pv is None:
            pv = self.pvs[name] = self.epics.PV(name, form="time", auto_monitor=False)
        if not pv.wait_for_connection(timeout=timeout):
            raise TimeoutError(f"{name} did not connect within {timeout} s")
        return pv

    def op_info(self, pv: str, timeout: float = 5.0) -> dict[str, Any]:
        chan = self._pv(pv, timeout)
        return {"connected": chan.connected, "read_access": chan.read_access,
                "write_access": chan.write_access, "type": chan.type, "count": chan.count,
                "nelm": chan.nelm, "host": chan.host}

    def op_get(self, pv: str, timeout: float = 5.0, as_string: bool = False,
               ctrl: bool = False, count: int | None = None) -> dict[str, Any]:
        chan = self._pv(pv, timeout)
        value = chan.get(timeout=timeout, use_monitor=False, as_string=as_string, count=count)
        if value is None:
            raise TimeoutError(f"get {pv} returned None (timeout {timeout} s)")
        out = {"value": _jsonable(value), "severity": chan.severity, "status": chan.status,
               "posixseconds": chan.posixseconds, "nanoseconds": chan.nanoseconds,
               "timestamp": chan.timestamp, "type": chan.type, "count": chan.count,
               "write_access": chan.write_access}
        if ctrl:
            ctrlvars = chan.get_ctrlvars(timeout=timeout)
            if ctrlvars is None:
                raise TimeoutError(f"get_ctrlvars {pv} returned None")
            out["ctrl"] = _jsonable(dict(ctrlvars))
        return out

    def op_put(self, pv: str, value: Any, wait: bool = True,
               timeout: float = 5.0) -> dict[str, Any]:
        chan = self._pv(pv, timeout)
        ret = chan.put(value, wait=wait, timeout=timeout)
        return {"ret": _jsonable(ret)}

    def op_subscribe(self, pv: str, id: str, timeout: float = 5.0,
                     as_string: bool = False) -> dict[str, Any]:
        updates: list[dict[str, Any]] = []
        cond = threading.Condition()

        def callback(**kw: Any) -> None:
            item = {k: _jsonable(kw.get(k)) for k in (
                "value", "char_value", "severity", "status", "posixseconds", "nanoseconds",
                "timestamp")}
            with cond:
                updates.append(item)
                cond.notify_all()

        chan = self.epics.PV(pv, form="time", auto_monitor=True, callback=callback)
        self.subs[id] = (chan, updates, cond)
        got = self._wait(id, 1, timeout)
        return {"updates": got}

    def _wait(self, id: str, count: int, timeout: float) -> list[dict[str, Any]]:
        _, updates, cond = self.subs[id]
        deadline = time.monotonic() + timeout
        with cond:
            while len(updates) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(updates)} of {count} updates within {timeout} s: "
                                       f"{updates}")
                cond.wait(left)
            return list(updates)

    def op_updates(self, id: str, count: int, timeout: float = 10.0) -> dict[str, Any]:
        return {"updates": self._wait(id, count, timeout)}

    def op_unsubscribe(self, id: str) -> dict[str, Any]:
        chan, _, _ = self.subs.pop(id)
        chan.clear_callbacks()
        chan.disconnect()
        return {}

    def op_stderr(self) -> dict[str, Any]:
        with open(self.stderr_path, errors="replace") as f:
            return {"stderr": f.read()}

    def op_wait_stderr(self, contains: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            self.epics.ca.poll()
            text = self.op_stderr()["stderr"]
            if contains in text:
                return {"stderr": text}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{contains!r} not on libca's stderr within {timeout} s; "
                                   f"it has: {text!r}")
            time.sleep(0.05)


def main() -> None:
    stderr_path = sys.argv[1]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sink = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    worker = Worker(stderr_path)
    proto.write(json.dumps({"ok": True, "ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.pop("op")
        if op == "exit":
            proto.write(json.dumps({"ok": True}) + "\n")
            break
        try:
            reply = {"ok": True, **getattr(worker, f"op_{op}")(**request)}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply) + "\n")
    proto.flush()
    os._exit(0)  # skip libca's atexit teardown: it can hang on a dead server


if __name__ == "__main__":
    main()
