"""A ``/proc`` or cgroup file opened once and re-read from its start.

The health tick and the PVA guard read a few such files several times a
second; one ``pread`` per reading costs no open, no path handling and no
Python file object.
"""

from __future__ import annotations

import os
from pathlib import Path


class KeptFile:
    """``read()``: the file's first ``size`` bytes now (one ``pread``)."""

    def __init__(self, path: Path | str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def read(self, size: int = 4096) -> bytes:
        return os.pread(self.fd, size, 0)

    def close(self) -> None:
        os.close(self.fd)
