"""A p4p client of the camera IOC, run inside a test namespace.

``python gige_client.py '<json spec>'``: spec has ``prefix``, ``duration`` (s),
optional ``conf`` (p4p client settings; default: from the environment). It
starts acquisition, monitors ``Pva1:Image`` for ``duration`` seconds while
polling the stream PVs, stops acquisition and prints one JSON line: frames
seen, their rate, whether every image matched the emulator's test pattern,
the IOC's stream counters, and when (seconds after the Acquire put returned)
and with what message the stream PVs went into alarm.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import numpy as np


def pattern_ok(image: Any) -> bool:
    height, width = image.shape
    block = int(image.attrib["BlockId"])
    y, x = np.mgrid[0:height, 0:width]
    return bool(np.array_equal(image, ((x + y + block) % 255).astype(np.uint8)))


def main(spec: dict[str, Any]) -> dict[str, Any]:
    from p4p.client.thread import Context

    conf = spec.get("conf")
    ctx = Context("pva", conf=conf, useenv=conf is None)
    prefix = spec["prefix"]
    lock = threading.Lock()
    frames: list[float] = []
    bad: list[int] = []
    checked = 0

    def on_image(image: Any) -> None:
        nonlocal checked
        if isinstance(image, Exception) or image.shape == (0, 0):
            return
        with lock:
            frames.append(time.monotonic())
            if checked < 5 or len(frames) % 10 == 0:   # checking costs CPU: sample
                checked += 1
                if not pattern_ok(image):
                    bad.append(int(image.attrib["BlockId"]))

    ctx.get(prefix + "cam1:StreamPort_RBV", timeout=10)
    port = int(ctx.get(prefix + "cam1:StreamPort_RBV"))
    sub = ctx.monitor(prefix + "Pva1:Image", on_image)
    ctx.put(prefix + "cam1:Acquire", 1, wait=True, timeout=10)
    started = time.monotonic()
    alarm_at: float | None = None
    alarm_message = ""
    while time.monotonic() - started < spec["duration"]:
        raw = ctx.get(prefix + "cam1:StreamFrames_RBV", timeout=5).raw
        if alarm_at is None and raw.alarm.severity == 3:
            alarm_at = time.monotonic() - started
            alarm_message = str(raw.alarm.message)
        time.sleep(0.05)
    ctx.put(prefix + "cam1:Acquire", 0, wait=True, timeout=10)
    sub.close()
    stats = {name: int(ctx.get(prefix + f"cam1:{name}_RBV"))
             for name in ("StreamFrames", "StreamFramesIncomplete", "StreamPacketsMissing",
                          "StreamPackets", "ArrayCounter")}
    status = str(ctx.get(prefix + "cam1:StreamStatus_RBV").raw.value)
    ctx.close()
    with lock:
        span = frames[-1] - frames[0] if len(frames) > 1 else 0.0
        rate = (len(frames) - 1) / span if span else 0.0
        return {"frames": len(frames), "rate": rate, "checked": checked, "bad": bad,
                "port": port, "stats": stats, "status": status, "alarm_at": alarm_at,
                "alarm_message": alarm_message}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
