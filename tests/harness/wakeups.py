"""How often a process's threads wake up (voluntary context switches, from /proc)."""

from __future__ import annotations

import os
import time

from .clients import poll_until


def wakeups(pid: int) -> int:
    """Voluntary context switches so far, summed over the process's threads."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                total += next(int(line.split()[1]) for line in status
                              if line.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration):
            continue  # a thread that ended meanwhile
    return total


def wakeups_per_s(pid: int, window: float = 2.0) -> float:
    """Wake-ups per second over the next ``window`` s (a measurement, not a wait)."""
    first, start = wakeups(pid), time.monotonic()
    time.sleep(window)
    return (wakeups(pid) - first) / (time.monotonic() - start)


def wait_still(pid: int, most: float, timeout: float = 30.0) -> float:
    """Poll until the process wakes at most ``most`` times a second over a 2 s window;
    the rate seen."""
    rates: list[float] = []

    def still() -> float | None:
        rates.append(wakeups_per_s(pid))
        if rates[-1] > most:
            raise AssertionError(f"wake-ups/s seen: {[round(r, 1) for r in rates]}")
        return rates[-1]

    return float(poll_until(still, timeout=timeout, message=f"at most {most} wake-ups/s"))
