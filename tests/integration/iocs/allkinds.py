"""A test IOC with every PV kind and known metadata, so assertions are exact.

- scalars FLOAT, INT, BOOL, ENUM, STRING (writable, with limits/alarms/units)
  and read-only RO_FLOAT, RO_STRING, DISP_ONLY (display limits only);
- arrays WF_F64, WF_F32, WF_I32, WF_I16, WF_U8 (writable, max 8 elements);
- EVEN: a validator refuses odd numbers; ROUNDED: a validator rounds to 0.1;
- DRIVE (writable) -> on_put hook copies it to DRIVEN (read-only, alarm
  limits lolo -10, low -5, high 5, hihi 10) and counts puts in PUT_COUNT;
- FAULT (writable bool): on_put raises/clears a COMM/INVALID alarm on DRIVEN;
- TICKS counts a 0.2 s scan;
- ``marker`` argument: the startup hook writes "started <prefix>" to that file,
  the shutdown hook appends "stopped <PUT_COUNT>".
"""

from __future__ import annotations

from pathlib import Path

from podioc import IOC, PutRefused, Severity, Status, pv, scan, shutdown, startup

STATES = ["ZERO", "ONE", "TWO", "THREE"]


class AllKinds(IOC):
    """Every kind of PV with fixed, known metadata."""

    float_ = pv.float(1.5, name="FLOAT", units="mm", precision=3, limits=(-100.0, 100.0),
                      display_limits=(-200.0, 200.0),
                      alarm=pv.Alarm(lolo=-90.0, low=-50.0, high=50.0, hihi=90.0),
                      writable=True, description="A float")
    int_ = pv.int(7, name="INT", units="cnt", limits=(-1000, 1000),
                  display_limits=(-2000, 2000),
                  alarm=pv.Alarm(lolo=-900, low=-500, high=500, hihi=900),
                  writable=True, description="An int")
    bool_ = pv.bool(False, name="BOOL", states=("Off", "On"), writable=True,
                    description="A bool")
    enum_ = pv.enum(STATES, "ONE", name="ENUM", writable=True, description="An enum")
    string_ = pv.string("hello", name="STRING", writable=True, description="A string")
    ro_float = pv.float(3.25, name="RO_FLOAT", units="V", precision=2,
                        description="Read-only float")
    ro_string = pv.string("fixed", name="RO_STRING", description="Read-only string")
    disp_only = pv.float(1.0, name="DISP_ONLY", precision=2, display_limits=(-5.0, 5.0),
                         description="Display limits only")

    wf_f64 = pv.waveform(8, [1.0, 2.0, 3.0], dtype="float64", name="WF_F64", units="V",
                         precision=2, limits=(-1000.0, 1000.0), writable=True)
    wf_f32 = pv.waveform(8, [0.5, 1.5], dtype="float32", name="WF_F32", writable=True)
    wf_i32 = pv.waveform(8, [1, 2, 3], dtype="int32", name="WF_I32", units="cnt",
                         alarm=pv.Alarm(high=100, hihi=1000), writable=True)
    wf_i16 = pv.waveform(8, [-1, 0, 1], dtype="int16", name="WF_I16", writable=True)
    wf_u8 = pv.waveform(8, [1, 2, 255], dtype="uint8", name="WF_U8", writable=True)

    even = pv.int(2, name="EVEN", writable=True, description="Refuses odd numbers")
    rounded = pv.float(0.0, name="ROUNDED", precision=1, writable=True,
                       description="Rounded to 0.1 by a validator")

    drive = pv.float(0.0, name="DRIVE", limits=(-50.0, 50.0), writable=True,
                     description="Copied to DRIVEN by an on_put hook")
    driven = pv.float(0.0, name="DRIVEN", units="A", precision=2,
                      alarm=pv.Alarm(lolo=-10.0, low=-5.0, high=5.0, hihi=10.0),
                      description="Follows DRIVE")
    put_count = pv.int(0, name="PUT_COUNT", description="Accepted puts to DRIVE")
    fault = pv.bool(False, name="FAULT", states=("OK", "FAULT"), writable=True)
    ticks = pv.int(0, name="TICKS", description="Scan count")

    def __init__(self, prefix: str = "", *, marker: str = "") -> None:
        super().__init__(prefix)
        self.marker = Path(marker) if marker else None

    @even.validator
    async def _check_even(self, value: int) -> None:
        if value % 2:
            raise PutRefused(f"{value} is odd; EVEN takes even numbers only")

    @rounded.validator
    async def _round(self, value: float) -> float:
        return round(value, 1)

    @drive.on_put
    async def _follow(self, value: float) -> None:
        self.driven.value = value
        self.put_count.value = self.put_count.value + 1

    @fault.on_put
    async def _fault(self, value: bool) -> None:
        if value:
            self.driven.set_alarm(Severity.INVALID, Status.COMM, "device lost")
        else:
            self.driven.set_alarm()

    @scan(period=0.2)
    async def _tick(self) -> None:
        self.ticks.value = self.ticks.value + 1

    @startup
    async def _started(self) -> None:
        if self.marker is not None:
            self.marker.write_text(f"started {self.prefix}\n")

    @shutdown
    async def _stopped(self) -> None:
        if self.marker is not None:
            with self.marker.open("a") as f:
                f.write(f"stopped {self.put_count.value}\n")
