"""PVs for the put-log tests: one of each kind a put can be refused on.

- SP: writable float, limits 0..100 (an out-of-range put is refused);
- MODE: writable enum (an unknown state string is refused);
- LABEL: writable string; WAVE: writable float64 waveform;
- RO: read-only float; DENIED: writable float the access rules close;
- BURST: writable float without limits, for the burst tests.
"""

from __future__ import annotations

from podioc import IOC, pv


class PutLogTarget(IOC):
    """Puts to log."""

    sp = pv.float(10.0, name="SP", limits=(0, 100), writable=True)
    mode = pv.enum(["OFF", "ON"], "OFF", name="MODE", writable=True)
    label = pv.string("first", name="LABEL", writable=True)
    wave = pv.waveform(8, [1.0, 2.0], dtype="float64", name="WAVE", writable=True)
    ro = pv.float(1.0, name="RO")
    denied = pv.float(0.0, name="DENIED", writable=True)
    burst = pv.float(0.0, name="BURST", writable=True)
