"""podioc itself as a build input: its Dockerfile, project file, package and requirements.

From a source checkout (editable install) the checkout's files are the truth;
an installed podioc carries its Dockerfile as package data and gets a
generated minimal project file.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .._version import __version__
from .engine import ImageBuildError


@dataclass(frozen=True)
class FrameworkSource:
    """Where podioc's Dockerfile, project file and package come from."""

    dockerfile: str
    pyproject: str
    readme: str
    package_dir: Path
    from_checkout: bool


def _checkout_root() -> Path | None:
    """The source checkout podioc runs from (editable install), if any."""
    root = Path(__file__).resolve().parents[3]
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "Dockerfile").is_file()):
        return None
    try:
        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if name == "podioc" else None


def framework_source() -> FrameworkSource:
    """podioc's Dockerfile and sources, from a checkout or from the installed package.

    An installed (non-editable) podioc carries its Dockerfile as package data
    (``podioc/deploy/Dockerfile``) and gets a generated minimal project file.
    """
    package_dir = Path(__file__).resolve().parents[1]
    root = _checkout_root()
    if root is not None:
        readme = root / "README.md"
        return FrameworkSource(
            dockerfile=(root / "Dockerfile").read_text(),
            pyproject=(root / "pyproject.toml").read_text(),
            readme=readme.read_text() if readme.is_file() else "podioc\n",
            package_dir=package_dir, from_checkout=True)
    shipped = Path(__file__).resolve().with_name("Dockerfile")
    if not shipped.is_file():
        raise ImageBuildError(
            "this podioc installation has no Dockerfile (neither a source checkout nor "
            "podioc/deploy/Dockerfile): reinstall podioc, or build from a checkout with "
            "`pip install -e .`")
    return FrameworkSource(dockerfile=shipped.read_text(), pyproject=_minimal_pyproject(),
                           readme="podioc\n", package_dir=package_dir, from_checkout=False)


def _minimal_pyproject() -> str:
    """A project file that rebuilds the installed podioc from its package directory."""
    deps = runtime_requirements()
    dep_lines = "".join(f"    {json.dumps(d)},\n" for d in deps)
    return (
        '[build-system]\nrequires = ["hatchling>=1.21"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "podioc"\nversion = "{__version__}"\nreadme = "README.md"\n'
        f'requires-python = ">=3.11"\ndependencies = [\n{dep_lines}]\n\n'
        '[project.scripts]\npodioc = "podioc.cli:main"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["framework/podioc"]\n')


def runtime_requirements(pyproject_text: str | None = None) -> list[str]:
    """podioc's own dependencies (no extras), as requirement strings.

    From ``pyproject_text`` when given (a checkout's project file is the truth,
    even when the editable install's metadata is older), else from the
    installed distribution's metadata.
    """
    if pyproject_text is not None:
        try:
            deps = tomllib.loads(pyproject_text).get("project", {}).get("dependencies")
        except tomllib.TOMLDecodeError:
            deps = None
        if isinstance(deps, list):
            return [str(d) for d in deps]
    try:
        reqs = metadata.requires("podioc") or []
    except metadata.PackageNotFoundError:
        reqs = []
    return [r for r in reqs if "extra ==" not in r.replace("extra==", "extra ==")]


def build_requirements(pyproject_text: str) -> list[str]:
    """The build backend's requirements, from ``[build-system] requires``."""
    try:
        data = tomllib.loads(pyproject_text)
    except tomllib.TOMLDecodeError:
        return ["hatchling"]
    requires = data.get("build-system", {}).get("requires", ["hatchling"])
    return [str(r) for r in requires]
