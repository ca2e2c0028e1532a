"""Camera throughput: emulator -> podioc camera IOC -> p4p client, against two ceilings.

    .venv/bin/python benchmarks/gige.py [--duration 60] [--sizes 640x480 2048x2048]
                                        [--rate 1000] [--json out.json] [--quick]

For each image size (Mono8), with aravis's emulator on 127.0.0.1 asked for
``--rate`` frames/s (it sends what it can):

- ``host``: podioc's GigE Vision host alone (podioc.gige.Camera in this
  process, no IOC, no PVA): frames/s and MB/s received complete, CPU ms per
  frame. This is the receiving side's ceiling in Python. (aravis's
  ``arv-camera-test-0.8`` cannot be used here: it does not enumerate cameras
  on the loopback interface.)
- ``p4p``: a raw p4p server (own process) posting NTNDArrays of the same size
  as fast as it can, monitored by the same client: the serving side's ceiling.
- ``ioc``: ``podioc run iocs/gige/gige.yaml`` with the emulator, a p4p client
  monitoring ``Pva1:Image``: frames/s and MB/s at the client, the IOC's CPU ms
  per frame, its RSS at start and end of ``--duration`` s of acquisition.

Everything runs on loopback; every loop is bounded in time; only processes
started here are stopped (by PID).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from harness import IocProcess  # noqa: E402
from harness.gige_emulator import LoopbackEmulator  # noqa: E402
from podioc.gige import Camera, Frame  # noqa: E402

RAW_SERVER = """
import sys, time, numpy as np
from p4p.nt import NTNDArray
from p4p.server import Server
from p4p.server.thread import SharedPV
w, h, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
nt = NTNDArray()
image = (np.arange(w * h) % 251).astype(np.uint8).reshape(h, w)
pv = SharedPV(nt=nt, initial=image)
with Server(providers=[{"RAW:Image": pv}], conf={"EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
            "EPICS_PVA_SERVER_PORT": "0", "EPICS_PVA_BROADCAST_PORT": "0"}, useenv=False) as s:
    print(s.conf()["EPICS_PVAS_SERVER_PORT"], flush=True)
    sys.stdin.readline()
    end = time.monotonic() + duration
    n = 0
    while time.monotonic() < end:
        n += 1
        pv.post(image)
    print(n, flush=True)
"""


class Monitor:
    """A p4p monitor counting images (and their bytes) of one channel."""

    def __init__(self, name: str, conf: dict[str, str]) -> None:
        from p4p.client.thread import Context

        self.ctx = Context("pva", conf=conf, useenv=False)
        self.lock = threading.Lock()
        self.count = 0
        self.nbytes = 0
        self.sub = self.ctx.monitor(name, self._on, notify_disconnect=False)

    def _on(self, value: Any) -> None:
        if isinstance(value, Exception) or value.size <= 1:
            return
        with self.lock:
            self.count += 1
            self.nbytes += value.nbytes

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.count, self.nbytes

    def close(self) -> None:
        self.sub.close()
        self.ctx.close()


def rate_of(before: tuple[int, int], after: tuple[int, int], seconds: float) -> dict[str, float]:
    frames = after[0] - before[0]
    return {"frames_per_s": frames / seconds,
            "mb_per_s": (after[1] - before[1]) / seconds / 1e6}


def bench_host(width: int, height: int, rate: float, duration: float,
               log_dir: Path) -> dict[str, Any]:
    with LoopbackEmulator(log_dir):
        cam = Camera(LoopbackEmulator.address)
        try:
            cam.connect()
            nodes = cam.features
            nodes.set("Width", width)
            nodes.set("Height", height)
            nodes.set("AcquisitionFrameRate", rate)
            got: list[int] = [0]

            def on_frame(frame: Frame) -> None:
                got[0] += 1

            receiver = cam.open_stream(on_frame, packet_size=9000)
            cam.start()
            time.sleep(1.0)        # settle (benchmark pacing, not synchronisation)
            proc = psutil.Process()
            cpu0, n0, t0 = sum(proc.cpu_times()[:2]), got[0], time.monotonic()
            time.sleep(duration)
            cpu1, n1, t1 = sum(proc.cpu_times()[:2]), got[0], time.monotonic()
            cam.stop()
            stats = receiver.assembler.stats
            frames = n1 - n0
            return {"frames_per_s": frames / (t1 - t0),
                    "mb_per_s": frames * width * height / (t1 - t0) / 1e6,
                    "cpu_ms_per_frame": 1000 * (cpu1 - cpu0) / max(frames, 1),
                    "incomplete": stats.frames_incomplete}
        finally:
            cam.close()


def bench_p4p(width: int, height: int, duration: float) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", RAW_SERVER, str(width), str(height),
                             str(duration + 1)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = proc.stdout.readline().strip()
        mon = Monitor("RAW:Image", {"EPICS_PVA_NAME_SERVERS": f"127.0.0.1:{port}",
                                    "EPICS_PVA_AUTO_ADDR_LIST": "NO"})
        time.sleep(0.5)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(0.5)
        before, t0 = mon.snapshot(), time.monotonic()
        time.sleep(duration - 0.5)
        after, t1 = mon.snapshot(), time.monotonic()
        mon.close()
        posted = int(proc.stdout.readline().strip() or 0)
        out = rate_of(before, after, t1 - t0)
        out["posted_per_s"] = posted / (duration + 1)
        return out
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def bench_ioc(width: int, height: int, rate: float, duration: float,
              log_dir: Path) -> dict[str, Any]:
    config = log_dir / "gige-bench.yaml"
    config.write_text(f"ioc: {REPO / 'iocs' / 'gige' / 'ioc.py'}:GigECamera\n"
                      f"prefix: \"BENCH:\"\nargs:\n  camera: 127.0.0.1\n"
                      f"  max_pixels: {width * height}\n  packet_size: 9000\n")
    with LoopbackEmulator(log_dir), IocProcess(config, log_dir=log_dir) as ioc:
        from p4p.client.thread import Context

        conf = ioc.pva_conf()
        ctl = Context("pva", conf=conf, useenv=False)
        ctl.put(ioc.pv("cam1:SizeX"), width, wait=True)
        ctl.put(ioc.pv("cam1:SizeY"), height, wait=True)
        ctl.put(ioc.pv("cam1:FrameRate"), rate, wait=True)
        mon = Monitor(ioc.pv("Pva1:Image"), conf)
        server = psutil.Process(ioc.pid)
        ctl.put(ioc.pv("cam1:Acquire"), 1, wait=True)
        time.sleep(1.0)
        rss0 = server.memory_info().rss / 2**20
        cpu0 = sum(server.cpu_times()[:2])
        before, t0 = mon.snapshot(), time.monotonic()
        received0 = int(ctl.get(ioc.pv("cam1:ArrayCounter_RBV")))
        stream0 = int(ctl.get(ioc.pv("cam1:StreamFrames_RBV")))
        time.sleep(duration)
        after, t1 = mon.snapshot(), time.monotonic()
        received1 = int(ctl.get(ioc.pv("cam1:ArrayCounter_RBV")))
        stream1 = int(ctl.get(ioc.pv("cam1:StreamFrames_RBV")))
        cpu1 = sum(server.cpu_times()[:2])
        rss1 = server.memory_info().rss / 2**20
        incomplete = int(ctl.get(ioc.pv("cam1:StreamFramesIncomplete_RBV")))
        ctl.put(ioc.pv("cam1:Acquire"), 0, wait=True)
        mon.close()
        ctl.close()
        out = rate_of(before, after, t1 - t0)
        served = received1 - received0
        out.update({"ioc_frames_per_s": served / (t1 - t0),
                    "stream_frames_per_s": (stream1 - stream0) / (t1 - t0),
                    "ioc_cpu_ms_per_frame": 1000 * (cpu1 - cpu0) / max(served, 1),
                    "rss_start_mb": rss0, "rss_end_mb": rss1, "incomplete": incomplete})
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--sizes", nargs="+", default=["640x480", "2048x2048"])
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="frame rate asked of the emulator")
    parser.add_argument("--quick", action="store_true", help="3 s per measure")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    duration = 3.0 if args.quick else args.duration
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gige-bench-") as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            row = {"host": bench_host(width, height, args.rate, min(duration, 10), Path(tmp)),
                   "p4p": bench_p4p(width, height, min(duration, 10)),
                   "ioc": bench_ioc(width, height, args.rate, duration, Path(tmp))}
            ceiling = min(row["host"]["frames_per_s"], row["p4p"]["frames_per_s"])
            row["ioc_vs_slower_ceiling"] = row["ioc"]["frames_per_s"] / ceiling if ceiling else 0
            results[size] = row
            print(f"{size} Mono8:", json.dumps(row, indent=1, default=float), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
