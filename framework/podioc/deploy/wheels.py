"""Wheels made on this host for the base image's Python (the offline wheelhouse).

:func:`make_wheelhouse` downloads binary wheels of every dependency for the
:class:`~podioc.deploy.engine.PythonTarget` the base image has, so the image
builds with no network (``PIP_NO_INDEX=1``): no package index needs to be
reachable from inside a container and no proxy certificate needs to be baked
into the image.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .engine import ImageBuildError, PythonTarget

_SAVED_RE = re.compile(r"^(?:Saved|File was already downloaded) (\S+\.whl)\s*$", re.MULTILINE)


def default_cache_dir() -> Path:
    """``$PODIOC_CACHE_DIR`` or ``$XDG_CACHE_HOME/podioc`` or ``~/.cache/podioc``."""
    explicit = os.environ.get("PODIOC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "podioc"


def pip_download_command(target: PythonTarget, dest: Path, requirements: Iterable[str],
                         requirement_files: Iterable[Path] = ()) -> list[str]:
    """The ``pip download`` command that fetches wheels for ``target`` into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
           "--progress-bar", "off", "--dest", str(dest), "--only-binary=:all:",
           "--implementation", "cp", "--python-version", target.version]
    for tag in target.platforms():
        cmd += ["--platform", tag]
    cmd += list(requirements)
    for path in requirement_files:
        cmd += ["--requirement", str(path)]
    return cmd


def make_wheelhouse(target: PythonTarget, dest: Path, requirements: Iterable[str],
                    requirement_files: Iterable[Path] = (),
                    runner: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None,
                    ) -> list[Path]:
    """Download binary wheels of ``requirements`` for ``target`` into ``dest``.

    Wheels already in ``dest`` are reused (pip skips files it finds there).
    Returns the wheels this resolution chose (``dest`` may hold more, from
    earlier builds).
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = pip_download_command(target, dest, requirements, requirement_files)
    run = runner or (lambda c: subprocess.run(c, capture_output=True, text=True, check=False))
    proc = run(cmd)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise ImageBuildError(
            f"could not fetch wheels for Python {target.version} ({target.machine}, "
            f"{target.libc} {target.libc_version}) on this host. A dependency may have no "
            "binary wheel for that Python: pin a version that has one, or build with "
            "--no-wheelhouse --network host so pip runs inside the build",
            "pip download", tail)
    wanted = {Path(m) for m in _SAVED_RE.findall(proc.stdout)}
    if wanted:
        return sorted(p for p in wanted if p.is_file())
    return sorted(dest.glob("*.whl"))
