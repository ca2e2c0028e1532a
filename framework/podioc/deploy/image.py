"""Build container images of podioc plus a user's IOC directories.

``podioc build`` lands here. The steps, each a small function:

1. :func:`~podioc.deploy.engine.connect` reaches the Docker engine.
2. :func:`~podioc.deploy.engine.inspect_python` asks the base image which
   Python it has (version, machine, C library).
3. :func:`~podioc.deploy.wheels.make_wheelhouse` downloads, on this host,
   binary wheels of every dependency for *that* Python, so the image builds
   with no network.
4. :func:`~podioc.deploy.buildcontext.assemble_context` lays out a build
   context shaped like podioc's source tree.
5. :func:`build_image` runs the build through the engine's API and reports
   progress as :class:`BuildEvent` values; a failing step raises
   :class:`~podioc.deploy.engine.ImageBuildError` carrying that step's output.

No click here: the CLI (``podioc.cli.image_cmds``) renders the events.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._version import __version__
from .buildcontext import BuildOptions, assemble_context, build_args, check_ioc_dirs
from .engine import (
    ImageBuildError,
    PythonTarget,
    connect,
    ensure_image,
    inspect_python,
    short_reason,
)
from .source import build_requirements, framework_source, runtime_requirements
from .wheels import default_cache_dir, make_wheelhouse

if TYPE_CHECKING:  # pragma: no cover - typing only
    import docker

_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


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
            raise ImageBuildError(
                f"the Docker engine refused the build: {short_reason(exc)}") from None
        except docker.errors.DockerException as exc:
            raise ImageBuildError(
                f"lost the Docker engine during the build: {short_reason(exc)}") from None
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
