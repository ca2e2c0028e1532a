"""What the IOC process sees of its host or container: memory, CPU load, descriptors,
kernel and software versions (the figures behind the iocStats health PVs).

In a container the figures are the container's: the memory limit of the
process's cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) is MEM_MAX
and that limit less the cgroup's usage is MEM_FREE; CPU loads are shares of
the CPUs the process may run on (its affinity set).
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

from .._version import __version__

try:
    import resource
except ImportError:  # pragma: no cover - not on Linux
    resource = None  # type: ignore[assignment]

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: cgroup v1 reports "no limit" as a page-rounded huge number (about 2**63).
NO_LIMIT = 2**60
#: A CA string: 39 bytes of UTF-8 (plus the NUL).
MAX_TEXT = 39


def fit(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 (never inside a character)."""
    return text.encode()[:limit].decode(errors="ignore")


@dataclass(frozen=True)
class Memory:
    """Bytes: this process's RSS, what is still free to it, and the most it may use."""

    used: int
    free: int
    total: int


def _read_int(path: Path) -> int | None:
    """The number in a cgroup file; None for ``max``, no file or no number."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """Candidate memory cgroup directories of this process, innermost first."""
    dirs: list[Path] = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        base = root if hierarchy == "0" and not controllers else (
            root / "memory" if "memory" in controllers.split(",") else None)
        if base is None:
            continue
        here = base / path.lstrip("/")
        while True:  # the process's own cgroup, then its parents up to the mount
            dirs.append(here)
            if here == base:
                break
            here = here.parent
    # in a container the cgroup namespace's root is the mount itself
    dirs += [root, root / "memory"]
    return dirs


def cgroup_memory(root: Path = CGROUP_ROOT,
                  proc_cgroup: Path = Path("/proc/self/cgroup")) -> tuple[int, int] | None:
    """(limit, usage) in bytes of the innermost cgroup with a memory limit, or None."""
    for directory in _cgroup_dirs(root, proc_cgroup):
        for limit_file, usage_file in (("memory.max", "memory.current"),
                                       ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            limit = _read_int(directory / limit_file)
            if limit is not None and limit < NO_LIMIT:
                usage = _read_int(directory / usage_file)
                return limit, usage if usage is not None else 0
    return None


def memory(process: psutil.Process) -> Memory:
    """MEM_USED (RSS), MEM_FREE and MEM_MAX: the cgroup's limit when there is one,
    else the host's (free = MemAvailable)."""
    used = process.memory_info().rss
    limited = cgroup_memory()
    if limited is not None:
        limit, usage = limited
        return Memory(used, max(0, limit - usage), limit)
    host = psutil.virtual_memory()
    return Memory(used, host.available, host.total)


class CpuLoad:
    """CPU load in % since the previous reading, as iocStats reports it."""

    def __init__(self, process: psutil.Process) -> None:
        self._process = process
        try:
            self.cpus = len(os.sched_getaffinity(0)) or 1
        except (AttributeError, OSError):  # pragma: no cover - not on Linux
            self.cpus = psutil.cpu_count() or 1
        self._process.cpu_percent(None)  # the first reading starts the interval
        psutil.cpu_percent(None)

    def ioc(self) -> float:
        """IOC_CPU_LOAD: this process's share of the CPUs it may use (0..100)."""
        return min(100.0, self._process.cpu_percent(None) / self.cpus)

    @staticmethod
    def system() -> float:
        """SYS_CPU_LOAD: the whole machine's busy share over all its CPUs (0..100)."""
        return float(psutil.cpu_percent(None))


def fd_max() -> int:
    """FD_MAX: the soft limit of open descriptors (after podioc raised it)."""
    if resource is None:  # pragma: no cover - not on Linux
        return 0
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 2**31 - 1


def kernel_version() -> str:
    """KERNEL_VERS: the kernel's name and release (``Linux 6.1.0-18-amd64``)."""
    uname = platform.uname()
    return fit(f"{uname.system} {uname.release}")


def software_version() -> str:
    """EPICS_VERS: what speaks EPICS here (``podioc 1.2 caproto 1.3.0 p4p 4.3.0``)."""
    parts = [f"podioc {__version__}"]
    for package in ("caproto", "p4p"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{package} {metadata.version(package)}")
    return fit(" ".join(parts))
