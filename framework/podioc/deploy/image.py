"""Build container images of podioc plus a user's IOC directories.

``podioc build`` lands here. The steps, each a small function:

1. :func:`connect` reaches the Docker engine (the ``docker`` package is an
   optional extra, imported only when a command needs it).
2. :func:`inspect_python` asks the base image which Python it has (version,
   machine, C library), by running ``python3`` in a throw-away container.
3. :func:`make_wheelhouse` downloads, on this host, binary wheels of every
   dependency for *that* Python, so the image builds with no network
   (``PIP_NO_INDEX=1``): no package index needs to be reachable from inside
   a container and no proxy certificate needs to be baked into the image.
4. :func:`assemble_context` lays out a build context shaped like podioc's
   source tree (``Dockerfile``, ``pyproject.toml``, ``README.md``,
   ``framework/``, ``wheels/``, ``iocs/NAME/``...).
5. :func:`build_image` runs the build through the engine's API and reports
   progress as :class:`BuildEvent` values; a failing step raises
   :class:`ImageBuildError` carrying that step's output.

No click here: the CLI (``podioc.cli.image_cmds``) renders the events.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._version import __version__
from ..errors import PodiocError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import docker

DEFAULT_BASE_IMAGE = "python:3.12-slim"
DEFAULT_REPOSITORY = "podioc"
MANAGED_LABEL = "io.podioc.managed"
#: Labels of throw-away containers podioc starts while building.
BUILD_HELPER_LABEL = "io.podioc.build-helper"
IOC_DIR_IN_IMAGE = "/iocs"
_COPY_IGNORE = ("__pycache__", "*.py[cod]", ".git", ".venv", "venv", ".mypy_cache",
                ".pytest_cache", ".ruff_cache", ".hypothesis", "*.egg-info", ".tox",
                "build", "dist", ".DS_Store")
_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SAVED_RE = re.compile(r"^(?:Saved|File was already downloaded) (\S+\.whl)\s*$", re.MULTILINE)


class EngineUnavailable(PodiocError):
    """No Docker engine could be reached, or the Docker SDK is missing."""


class ImageBuildError(PodiocError):
    """A build failed; carries the failing step and the tail of its output."""

    def __init__(self, message: str, step: str = "", output: Iterable[str] = ()) -> None:
        self.step = step
        self.output = list(output)
        self.reason = message
        text = message
        if step:
            text = f"build step failed: {step}\n{message}"
        if self.output:
            text += "\n--- output of the failing step (last lines) ---\n" + "\n".join(self.output)
        super().__init__(text)


# ---------------------------------------------------------------------------
# engine


def connect(timeout: float = 10.0) -> docker.DockerClient:
    """A Docker client that has answered a ping, or :class:`EngineUnavailable`.

    The engine is found the usual way (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``,
    ``DOCKER_CERT_PATH``, else the local socket).
    """
    try:
        import docker.errors

        import docker
    except ImportError:
        raise EngineUnavailable(
            "the Docker SDK is not installed: install podioc's docker extra "
            "(pip install 'podioc[docker]')") from None
    where = os.environ.get("DOCKER_HOST") or "the local socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            f"no Docker engine answered at {where}: {_short(exc)}. Start one (for example "
            "`dockerd &` as root, or Docker Desktop), or point DOCKER_HOST at a running "
            "engine") from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def image_exists(client: docker.DockerClient, name: str) -> bool:
    """True when ``name`` is an image in the engine's local store."""
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_image(client: docker.DockerClient, name: str) -> None:
    """Make sure image ``name`` is in the local store, pulling it when it is missing."""
    import docker.errors

    if image_exists(client, name):
        return
    try:
        client.images.pull(name)
    except docker.errors.DockerException as exc:
        raise ImageBuildError(
            f"image {name!r} is not in the local image store and pulling it failed: "
            f"{_short(exc)}. Pull or build it first, or choose another with --base-image "
            "(any image with python3 >= 3.11 and its venv module)") from None


# ---------------------------------------------------------------------------
# the base image's Python

_INSPECT_SCRIPT = (
    "import json, platform, sys; "
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'implementation': sys.implementation.name, 'machine': platform.machine(), "
    "'libc': platform.libc_ver()}))"
)


@dataclass(frozen=True)
class PythonTarget:
    """The interpreter wheels must fit: Python version, machine and C library."""

    version: str  # "3.12"
    machine: str  # "x86_64"
    libc: str = "glibc"  # "glibc", or "musl" when no glibc was found
    libc_version: str = "2.17"
    implementation: str = "cpython"

    @property
    def key(self) -> str:
        """A short name for caches: ``cp312-x86_64-glibc2.36``."""
        return f"cp{self.version.replace('.', '')}-{self.machine}-{self.libc}{self.libc_version}"

    def platforms(self) -> list[str]:
        """Wheel platform tags this interpreter accepts, most specific first."""
        arch = self.machine
        if self.libc != "glibc":
            return [f"musllinux_1_{minor}_{arch}" for minor in range(2, -1, -1)]
        try:
            glibc_minor = int(self.libc_version.split(".")[1])
        except (IndexError, ValueError):
            glibc_minor = 17
        tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{arch}" for minor, name in legacy.items() if minor <= glibc_minor]
        return tags

    @classmethod
    def from_json(cls, text: str) -> PythonTarget:
        """Parse the output of the inspection script."""
        data = json.loads(text.strip().splitlines()[-1])
        libc_name, libc_version = (data.get("libc") or ["", ""])[:2]
        return cls(version=data["version"], machine=data["machine"],
                   libc="glibc" if libc_name == "glibc" else "musl",
                   libc_version=libc_version or "0",
                   implementation=data.get("implementation", "cpython"))


def inspect_python(client: docker.DockerClient, image: str) -> PythonTarget:
    """Run ``python3`` in a throw-away container of ``image`` to see what it is."""
    import docker.errors

    container = None
    try:
        container = client.containers.create(
            image, entrypoint=["python3", "-c", _INSPECT_SCRIPT], command=[],
            network_mode="none", user="0:0", labels={BUILD_HELPER_LABEL: "true"})
        container.start()
        status = container.wait(timeout=60)
        out = container.logs(stdout=True, stderr=True).decode(errors="replace")
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"cannot run python3 in base image {image!r}: {_short(exc)}. "
                              "The base image needs python3 >= 3.11 on its PATH") from None
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
    if status.get("StatusCode") != 0:
        raise ImageBuildError(f"python3 failed in base image {image!r} "
                              f"(exit {status.get('StatusCode')}): {out.strip()[-500:]}")
    try:
        target = PythonTarget.from_json(out)
    except (ValueError, KeyError, IndexError):
        raise ImageBuildError(f"unexpected output of python3 in {image!r}: {out[-500:]}") from None
    if target.implementation != "cpython" or tuple(map(int, target.version.split("."))) < (3, 11):
        raise ImageBuildError(
            f"base image {image!r} has {target.implementation} {target.version}; podioc needs "
            "CPython >= 3.11 (for example python:3.12-slim or Debian bookworm's python3)")
    return target


# ---------------------------------------------------------------------------
# podioc itself: source tree, requirements, build backend


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


# ---------------------------------------------------------------------------
# wheels made on this host


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


# ---------------------------------------------------------------------------
# build context


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


# ---------------------------------------------------------------------------
# build


EventKind = Literal["phase", "step", "output", "done"]


@dataclass(frozen=True)
class BuildEvent:
    """One thing worth showing while an image builds.

    ``phase``: a podioc preparation stage (text says which); ``step``: the
    engine started Dockerfile step ``step`` of ``total``; ``output``: a line
    printed by the current step; ``done``: ``text`` is the image id.
    """

    kind: EventKind
    text: str
    step: int = 0
    total: int = 0


@dataclass(frozen=True)
class BuildResult:
    """What a finished build made."""

    image_id: str
    tags: tuple[str, ...]
    size: int
    seconds: float
    target: PythonTarget | None


def parse_stream(chunks: Iterable[Mapping[str, Any]], tail: int = 40) -> Iterator[BuildEvent]:
    """Turn the engine's build stream (decoded JSON chunks) into events.

    Raises :class:`ImageBuildError` with the failing step and the last
    ``tail`` lines of its output when the engine reports an error.
    """
    step_text = ""
    output: deque[str] = deque(maxlen=tail)
    image_id = ""
    pending = ""
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            if pending.strip():
                output.append(pending.rstrip())
            detail = chunk.get("errorDetail") or {}
            message = str(chunk.get("error") or detail.get("message") or "build failed")
            raise ImageBuildError(message.strip(), step_text, output)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            image_id = str(aux["ID"])
        text = chunk.get("stream")
        if not isinstance(text, str):
            continue
        pending += text
        *lines, pending = pending.split("\n")
        for raw in lines:
            line = raw.rstrip("\r")
            match = _STEP_RE.match(line)
            if match:
                step_text = match.group(3)
                output.clear()
                yield BuildEvent("step", step_text, int(match.group(1)), int(match.group(2)))
                continue
            if line.startswith("Successfully built "):
                image_id = image_id or line.split()[-1]
                continue
            if line.startswith(("Successfully tagged ", " ---> ", "Removing intermediate")):
                continue
            output.append(line)
            yield BuildEvent("output", line)
    if pending.strip():
        yield BuildEvent("output", pending.rstrip())
    yield BuildEvent("done", image_id)


def build_image(opts: BuildOptions, client: docker.DockerClient | None = None,
                on_event: Callable[[BuildEvent], None] | None = None) -> BuildResult:
    """Build the image ``opts`` describe; report progress to ``on_event``."""
    import docker.errors

    emit = on_event or (lambda _event: None)
    started = time.monotonic()
    check_ioc_dirs(opts.ioc_dirs)
    repo, tag = split_reference(opts.tag)
    client = client or connect()
    source = framework_source()
    target: PythonTarget | None = None
    wheels: list[Path] = []
    ensure_image(client, opts.base_image)
    if opts.wheelhouse:
        emit(BuildEvent("phase", f"inspecting base image {opts.base_image}"))
        target = inspect_python(client, opts.base_image)
        cache = (opts.cache_dir or default_cache_dir()) / "wheelhouse" / target.key
        reqfiles = [p / "requirements.txt" for p in opts.ioc_dirs
                    if (p / "requirements.txt").is_file()]
        emit(BuildEvent("phase", f"fetching wheels for Python {target.version} "
                                 f"({target.machine}) into {cache}"))
        wheels = make_wheelhouse(
            target, cache,
            [*runtime_requirements(source.pyproject), *build_requirements(source.pyproject)],
            reqfiles)
    emit(BuildEvent("phase", "assembling the build context"))
    labels = {"io.podioc.framework-version": __version__, **opts.labels}
    with tempfile.TemporaryDirectory(prefix="podioc-build-") as tmp:
        context = assemble_context(opts, Path(tmp), source, wheels)
        emit(BuildEvent("phase", f"building {repo}:{tag} from {opts.base_image}"))
        try:
            stream = client.api.build(
                path=str(context), tag=f"{repo}:{tag}", buildargs=build_args(opts),
                network_mode=opts.network, pull=opts.pull, nocache=opts.no_cache,
                rm=True, forcerm=True, decode=True, labels=labels)
            image_id = ""
            for event in parse_stream(stream):
                if event.kind == "done":
                    image_id = event.text
                else:
                    emit(event)
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"the Docker engine refused the build: {_short(exc)}") from None
        except docker.errors.DockerException as exc:
            raise ImageBuildError(f"lost the Docker engine during the build: {_short(exc)}"
                                  ) from None
    image = client.images.get(image_id or f"{repo}:{tag}")
    result = BuildResult(image_id=str(image.id), tags=tuple(image.tags),
                         size=int(image.attrs.get("Size", 0)),
                         seconds=time.monotonic() - started, target=target)
    emit(BuildEvent("done", result.image_id))
    return result


def split_reference(reference: str) -> tuple[str, str]:
    """``registry:5000/team/podioc:1.0`` -> (``registry:5000/team/podioc``, ``1.0``)."""
    if ":" in reference.rsplit("/", 1)[-1]:
        repo, tag = reference.rsplit(":", 1)
        return repo, tag
    return reference, "latest"


def added_size(client: docker.DockerClient, image: str, base_image: str) -> int:
    """Bytes that ``image``'s own layers add on top of ``base_image``."""
    base = client.api.history(base_image)
    mine = client.api.history(image)  # newest first; the base's entries come last
    return sum(int(layer.get("Size") or 0) for layer in mine[:max(len(mine) - len(base), 0)])
