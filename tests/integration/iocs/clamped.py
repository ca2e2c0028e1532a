"""Put and monitor options of EPICS output records: PVs whose out-of-limit puts
are clamped (``on_limit="clamp"``, an ao with DRVH/DRVL) next to one that
refuses them (the default); and monitor deadbands (MDEL/ADEL)."""

from __future__ import annotations

from podioc import IOC, pv


class Clamped(IOC):
    """SPEED and COUNT clamp to their limits, WF clamps each element; STRICT refuses."""

    speed = pv.float(0.0, name="SPEED", units="mm/s", precision=2, limits=(-10.0, 10.0),
                     writable=True, on_limit="clamp", description="Clamped at +-10")
    count = pv.int(0, name="COUNT", limits=(0, 100), writable=True, on_limit="clamp")
    wf = pv.waveform(4, [0.0] * 4, name="WF", limits=(-1.0, 1.0), writable=True,
                     on_limit="clamp")
    strict = pv.float(0.0, name="STRICT", limits=(-10.0, 10.0), writable=True)


class Deadbands(IOC):
    """LEVEL posts to CA value monitors on moves over 1, to log monitors over 5."""

    level = pv.float(0.0, name="LEVEL", writable=True, deadband=1.0, archive_deadband=5.0)
    plain = pv.int(0, name="PLAIN", writable=True)
