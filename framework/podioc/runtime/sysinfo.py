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
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .._version import __version__
from ..util.procfile import KeptFile

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


def _number(raw: bytes) -> int | None:
    """The number in a cgroup file; None for ``max`` or no number."""
    text = raw.strip()
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


class MemoryReader:
    """MEM_USED (RSS), MEM_FREE and MEM_MAX: the limit of the innermost memory cgroup
    that has one (re-read every time: a pod's limit can be resized in place), else
    the host's (free = MemAvailable). The files are opened once."""

    def __init__(self, root: Path = CGROUP_ROOT,
                 proc_cgroup: Path = Path("/proc/self/cgroup")) -> None:
        self._statm = KeptFile("/proc/self/statm")
        self._meminfo = KeptFile("/proc/meminfo")
        self._page = os.sysconf("SC_PAGE_SIZE")
        #: (limit, usage) file pairs, innermost cgroup first
        self._cgroups: list[tuple[KeptFile, KeptFile]] = []
        for directory in _cgroup_dirs(root, proc_cgroup):
            for limit_file, usage_file in (("memory.max", "memory.current"),
                                           ("memory.limit_in_bytes", "memory.usage_in_bytes")):
                with contextlib.suppress(OSError):
                    limit = KeptFile(directory / limit_file)
                    try:
                        self._cgroups.append((limit, KeptFile(directory / usage_file)))
                    except OSError:
                        limit.close()

    def cgroup(self) -> tuple[int, int] | None:
        """(limit, usage) in bytes of the innermost cgroup with a memory limit, or None."""
        for limit_file, usage_file in self._cgroups:
            limit = _number(limit_file.read())
            if limit is not None and limit < NO_LIMIT:
                return limit, _number(usage_file.read()) or 0
        return None

    def read(self) -> Memory:
        used = int(self._statm.read().split()[1]) * self._page
        limited = self.cgroup()
        if limited is not None:
            limit, usage = limited
            return Memory(used, max(0, limit - usage), limit)
        # MemTotal, MemFree and MemAvailable are its first lines
        fields = dict(line.split(b":", 1) for line in self._meminfo.read(256).splitlines()
                      if line.startswith((b"MemTotal:", b"MemAvailable:")))
        total, free = (int(fields.get(key, b"0 kB").split()[0]) * 1024
                       for key in (b"MemTotal", b"MemAvailable"))
        return Memory(used, free, total)

    def close(self) -> None:
        for kept in [self._statm, self._meminfo, *(f for pair in self._cgroups for f in pair)]:
            kept.close()


def cgroup_memory(root: Path = CGROUP_ROOT,
                  proc_cgroup: Path = Path("/proc/self/cgroup")) -> tuple[int, int] | None:
    """(limit, usage) in bytes of the innermost cgroup with a memory limit, or None."""
    reader = MemoryReader(root, proc_cgroup)
    try:
        return reader.cgroup()
    finally:
        reader.close()


class CpuLoad:
    """CPU loads in % since the previous reading, as iocStats reports them: this
    process's (``os.times``) and the machine's (the first line of ``/proc/stat``)."""

    def __init__(self) -> None:
        try:
            self.cpus = len(os.sched_getaffinity(0)) or 1
        except (AttributeError, OSError):  # pragma: no cover - not on Linux
            self.cpus = os.cpu_count() or 1
        self._stat = KeptFile("/proc/stat")
        self._own = self._own_now()
        self._machine = self._machine_now()

    @staticmethod
    def _own_now() -> tuple[float, float]:
        times = os.times()
        return times.user + times.system, time.monotonic()

    def _machine_now(self) -> tuple[int, int]:
        """(busy, total) clock ticks: idle and iowait are idle; guest time is already
        in user and nice (as psutil counts them)."""
        ticks = [int(field) for field in self._stat.read(512).split(b"\n", 1)[0].split()[1:9]]
        total = sum(ticks)
        return total - ticks[3] - ticks[4], total

    def ioc(self) -> float:
        """IOC_CPU_LOAD: this process's share of the CPUs it may use (0..100)."""
        (cpu, wall), (cpu0, wall0) = self._own_now(), self._own
        self._own = (cpu, wall)
        return min(100.0, max(0.0, 100.0 * (cpu - cpu0) / max(wall - wall0, 1e-6) / self.cpus))

    def system(self) -> float:
        """SYS_CPU_LOAD: the whole machine's busy share over all its CPUs (0..100)."""
        (busy, total), (busy0, total0) = self._machine_now(), self._machine
        self._machine = (busy, total)
        return min(100.0, max(0.0, 100.0 * (busy - busy0) / (total - total0))) \
            if total > total0 else 0.0

    def close(self) -> None:
        self._stat.close()


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
