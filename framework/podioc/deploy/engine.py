"""The Docker engine as ``podioc build`` uses it, and the base image's Python.

:func:`connect` reaches the engine (the ``docker`` package is an optional
extra, imported only when a command needs it); :func:`ensure_image` makes
sure an image is in its local store; :func:`inspect_python` asks a base image
which Python it has (:class:`PythonTarget`: version, machine, C library) by
running ``python3`` in a throw-away container. The two errors of image
building live here, at the bottom of the build modules.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PodiocError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import docker

#: Label on every container and volume podioc manages.
MANAGED_LABEL = "io.podioc.managed"
#: Labels of throw-away containers podioc starts while building.
BUILD_HELPER_LABEL = "io.podioc.build-helper"


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
            f"no Docker engine answered at {where}: {short_reason(exc)}. Start one (for "
            "example `dockerd &` as root, or Docker Desktop), or point DOCKER_HOST at a "
            "running engine") from None
    return client


def short_reason(exc: BaseException) -> str:
    """The last line of an exception's message, for one-line error reports."""
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
            f"{short_reason(exc)}. Pull or build it first, or choose another with --base-image "
            "(any image with python3 >= 3.11 and its venv module)") from None


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
        raise ImageBuildError(f"cannot run python3 in base image {image!r}: "
                              f"{short_reason(exc)}. The base image needs python3 >= 3.11 "
                              "on its PATH") from None
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
