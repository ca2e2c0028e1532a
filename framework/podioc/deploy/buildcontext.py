"""What ``podioc build`` is asked for, and the build context it sends to the engine.

:class:`BuildOptions` holds the command's choices; :func:`check_ioc_dirs`
vets the IOC directories; :func:`assemble_context` lays out a context shaped
like podioc's source tree (``Dockerfile``, ``pyproject.toml``, ``README.md``,
``framework/``, ``wheels/``, ``iocs/NAME/``...); :func:`build_args` gives the
``--build-arg`` values, with the OCI label values from :func:`git_revision`
and :func:`git_remote_url`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from .engine import ImageBuildError
from .source import FrameworkSource

DEFAULT_BASE_IMAGE = "python:3.12-slim"
DEFAULT_REPOSITORY = "podioc"
IOC_DIR_IN_IMAGE = "/iocs"
_COPY_IGNORE = ("__pycache__", "*.py[cod]", ".git", ".venv", "venv", ".mypy_cache",
                ".pytest_cache", ".ruff_cache", ".hypothesis", "*.egg-info", ".tox",
                "build", "dist", ".DS_Store")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``podioc build`` needs to know."""

    ioc_dirs: tuple[Path, ...] = ()
    tag: str = f"{DEFAULT_REPOSITORY}:{__version__}"
    base_image: str = DEFAULT_BASE_IMAGE
    network: str | None = None
    wheelhouse: bool = True
    pull: bool = False
    no_cache: bool = False
    source_url: str = ""
    revision: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    #: IOC directory name -> {file name: text}: screens put at /iocs/NAME/screens/
    screens: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def ioc_dir_name(path: Path) -> str:
    """The directory name an IOC directory gets under ``/iocs`` in the image."""
    name = path.resolve().name
    if not _NAME_RE.match(name):
        raise ImageBuildError(
            f"IOC directory {str(path)!r}: its name {name!r} is not usable in the image",
            "", ["use lower-case letters, digits, '.', '_' and '-' (e.g. 'heater')"])
    return name


def check_ioc_dirs(dirs: Iterable[Path]) -> list[tuple[Path, str]]:
    """Validate IOC directories: exist, hold Python or YAML files, names unique."""
    seen: dict[str, Path] = {}
    out: list[tuple[Path, str]] = []
    for path in dirs:
        if not path.is_dir():
            raise ImageBuildError(f"IOC directory {str(path)!r} does not exist or is not a "
                                  "directory: pass the directory holding your ioc.py and "
                                  "instance configs")
        name = ioc_dir_name(path)
        if name in seen:
            raise ImageBuildError(f"IOC directories {str(seen[name])!r} and {str(path)!r} "
                                  f"would both become {IOC_DIR_IN_IMAGE}/{name} in the image: "
                                  "rename one")
        if not any(path.glob("*.py")) and not any(path.glob("*.y*ml")):
            raise ImageBuildError(f"IOC directory {str(path)!r} holds no .py or .yaml files: "
                                  "is it the right directory?")
        seen[name] = path
        out.append((path, name))
    return out


def git_revision(path: Path) -> str:
    """``git rev-parse HEAD`` in ``path`` (with ``-dirty`` when modified), or ``""``."""
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=False, timeout=10)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def git_remote_url(path: Path, remote: str = "origin") -> str:
    """The URL of git remote ``remote`` of the checkout holding ``path``, or ``""``.

    Credentials embedded in an https URL (``https://user:token@...``) are dropped.
    """
    try:
        proc = subprocess.run(["git", "-C", str(path), "remote", "get-url", remote],
                              capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    url = proc.stdout.strip() if proc.returncode == 0 else ""
    return re.sub(r"^(https?://)[^/@]*@", r"\1", url)


def assemble_context(opts: BuildOptions, dest: Path, source: FrameworkSource,
                     wheels: Iterable[Path] = ()) -> Path:
    """Write a build context into ``dest`` and return it.

    Layout: ``Dockerfile``, ``pyproject.toml``, ``README.md``,
    ``framework/podioc/``, ``wheels/*.whl`` and ``iocs/NAME/`` per IOC directory,
    with ``iocs/NAME/screens/`` holding ``opts.screens[NAME]`` (replacing any
    ``screens/`` the directory has).
    """
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(source.dockerfile)
    (dest / "pyproject.toml").write_text(source.pyproject)
    (dest / "README.md").write_text(source.readme)
    shutil.copytree(source.package_dir, dest / "framework" / "podioc",
                    ignore=shutil.ignore_patterns(*_COPY_IGNORE))
    wheel_dir = dest / "wheels"
    wheel_dir.mkdir(exist_ok=True)
    for wheel in wheels:
        shutil.copy2(wheel, wheel_dir / wheel.name)
    iocs = dest / "iocs"
    iocs.mkdir(exist_ok=True)
    for path, name in check_ioc_dirs(opts.ioc_dirs):
        shutil.copytree(path, iocs / name, ignore=shutil.ignore_patterns(*_COPY_IGNORE),
                        symlinks=False)
        if opts.screens.get(name):
            screens = iocs / name / "screens"
            shutil.rmtree(screens, ignore_errors=True)
            screens.mkdir()
            for fname, text in opts.screens[name].items():
                (screens / fname).write_text(text, encoding="utf-8")
    return dest


def build_args(opts: BuildOptions) -> dict[str, str]:
    """``--build-arg`` values: base image, offline pip, OCI label values."""
    args = {
        "BASE_IMAGE": opts.base_image,
        "PIP_NO_INDEX": "1" if opts.wheelhouse else "0",
        "VERSION": __version__,
        "REVISION": opts.revision or "unknown",
        "SOURCE": opts.source_url,
    }
    args.update(opts.build_args)
    return args
