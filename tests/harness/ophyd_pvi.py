"""Build an ophyd-async device from an IOC's PVI PV alone and drive it (run as a process).

``python ophyd_pvi.py PREFIX [PATH=VALUE ...]`` connects ``Device`` through
ophyd-async's PVI connector (``fastcs_connector(PREFIX)``: it reads
``PREFIX:PVI`` and everything it points to), reads every signal, sets each
``PATH`` (dotted attribute path, e.g. ``setpoint`` or ``ch.1.gain``) to
``VALUE`` (JSON) and reads it back, and prints one JSON document::

    {"signals": {"setpoint": {"type": "SignalRW", "source": "pva://...",
                              "value": 20.0}, ...},
     "sets": {"setpoint": {"value": 42.5}}}

The client's EPICS_PVA_* settings come from the environment (give it the IOC's),
which is why this runs as its own process: p4p's client context is process-wide.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from ophyd_async.core import Device, Signal, SignalRW, SignalW
from ophyd_async.fastcs.core import fastcs_connector


def _signals(device: Device, path: str = "") -> dict[str, Signal[Any]]:
    out: dict[str, Signal[Any]] = {}
    for name, child in device.children():
        dotted = f"{path}.{name}" if path else str(name)
        if isinstance(child, Signal):
            out[dotted] = child
        else:
            out.update(_signals(child, dotted))
    return out


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def main(prefix: str, sets: list[str]) -> dict[str, Any]:
    device = Device(name="ioc", connector=fastcs_connector(prefix))
    await device.connect(timeout=20)
    signals = _signals(device)
    report: dict[str, Any] = {"signals": {}, "sets": {}}
    for name, sig in sorted(signals.items()):
        entry: dict[str, Any] = {"type": type(sig).__name__, "source": sig.source}
        if not isinstance(sig, SignalW) or isinstance(sig, SignalRW):
            entry["value"] = _jsonable(await sig.get_value())  # type: ignore[attr-defined]
        report["signals"][name] = entry
    for item in sets:
        path, _, text = item.partition("=")
        sig = signals[path]
        assert isinstance(sig, SignalRW), f"{path} is {type(sig).__name__}, not writable"
        await sig.set(json.loads(text), timeout=10)
        report["sets"][path] = {"value": _jsonable(await sig.get_value())}
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2:]))))
