"""Building many long-lived objects at once without cyclic garbage collection."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored after).

    Each full collection rescans every object built so far, which costs
    ~0.1 s per protocol when 10,000 PVs get their channels at start-up. Use
    it around synchronous construction only, never across an ``await``.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
