"""Run IOC instances in local containers the way the cluster runs them.

``podioc up / down / logs / ps`` land here. A container made by ``up``:

- uses the host's network (EPICS name search is UDP broadcast: it needs the
  host's interfaces, as in the cluster, where IOC pods use ``hostNetwork``);
- mounts the instance's directory (its config and IOC code) read-only at
  ``/iocs/<directory name>``, so an edit needs a restart, never a rebuild;
- keeps autosave files in a named volume ``podioc-autosave-<instance>``;
- runs as uid/gid 10001 with a read-only root filesystem, a tmpfs ``/tmp``,
  no capabilities and ``no-new-privileges``; restarts ``unless-stopped``;
- gets ``PODIOC_PREFIX`` / ``PODIOC_TARGET`` (so the image's HEALTHCHECK
  knows what to probe), the config's ``epics:`` block and this shell's
  ``EPICS_*`` variables (the shell wins, as with ``podioc run``);
- is labelled ``io.podioc.managed=true`` and ``io.podioc.instance=<name>``:
  every other command finds containers by these labels, never by name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..autosave.settings import DEFAULT_DIR, ENV_DIR
from ..config import InstanceConfig
from ..errors import PodiocError
from .buildcontext import IOC_DIR_IN_IMAGE
from .engine import MANAGED_LABEL, connect
from .settings import IOC_UID, DeploySettings, load_settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from docker.models.containers import Container

    import docker

INSTANCE_LABEL = "io.podioc.instance"
PREFIX_LABEL = "io.podioc.prefix"
CONFIG_LABEL = "io.podioc.config"
AUTOSAVE_DIR = str(DEFAULT_DIR)
RUN_AS = f"{IOC_UID}:{IOC_UID}"
DEFAULT_STOP_TIMEOUT = DeploySettings.termination_grace_period

__all__ = ["AUTOSAVE_DIR", "CONFIG_LABEL", "INSTANCE_LABEL", "MANAGED_LABEL", "PREFIX_LABEL",
           "ContainerSpec", "InstanceStatus", "NoSuchInstance", "connect", "container_spec",
           "down", "find", "logs", "ps", "up"]


class NoSuchInstance(PodiocError):
    """No podioc-managed container runs the named instance."""


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create an instance's container (pure data, testable)."""

    name: str
    image: str
    command: list[str]
    environment: dict[str, str]
    labels: dict[str, str]
    volumes: dict[str, dict[str, str]]
    tmpfs: dict[str, str] = field(default_factory=lambda: {
        "/tmp": "rw,nosuid,nodev,size=64m,mode=1777"})
    stop_timeout: int = DEFAULT_STOP_TIMEOUT

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments of the engine's host configuration (``create_host_config``)."""
        return {
            "binds": self.volumes,
            "tmpfs": self.tmpfs,
            "network_mode": "host",
            "restart_policy": {"Name": "unless-stopped"},
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
        }

    def create(self, client: docker.DockerClient) -> Container:
        """Create (not start) the container through the engine's API."""
        api = client.api
        created = api.create_container(
            image=self.image, command=self.command, name=f"podioc-{self.name}",
            environment=self.environment, labels=self.labels, user=RUN_AS,
            stop_timeout=self.stop_timeout,
            host_config=api.create_host_config(**self.host_config()))
        container: Container = client.containers.get(created["Id"])
        return container


def docker_tmpfs_size(quantity: str) -> str:
    """A Kubernetes quantity (``64Mi``) as a tmpfs size option (``64m``)."""
    units = {"Ki": "k", "Mi": "m", "Gi": "g", "k": "k", "M": "m", "G": "g"}
    for suffix, unit in units.items():
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + unit
    return quantity


def container_spec(cfg: InstanceConfig, image: str | None = None,
                   environ: Mapping[str, str] | None = None,
                   extra_env: Mapping[str, str] | None = None,
                   stop_timeout: int | None = None) -> ContainerSpec:
    """The container that runs instance ``cfg`` (from a loaded config file).

    The config's ``deploy:`` block (see :mod:`podioc.deploy.settings`) gives
    the defaults: ``image``, ``env``, ``tmp_size`` and
    ``termination_grace_period`` (the stop timeout), as in the cluster.
    """
    settings = load_settings(cfg)
    environ = os.environ if environ is None else environ
    config_path = Path(cfg.source).resolve()
    ioc_dir = cfg.base_dir.resolve()
    mount = f"{IOC_DIR_IN_IMAGE}/{ioc_dir.name or 'ioc'}"
    try:
        rel = config_path.relative_to(ioc_dir).as_posix()
    except ValueError:
        raise PodiocError(f"{cfg.source}: the config must sit in its IOC directory "
                          f"({ioc_dir})") from None
    target = f"{mount}/{rel}"
    env: dict[str, str] = dict(settings.env)
    env.update(cfg.epics)
    env.update({k: v for k, v in environ.items() if k.startswith("EPICS_")})
    if environ.get("PODIOC_LOG_LEVEL"):
        env["PODIOC_LOG_LEVEL"] = environ["PODIOC_LOG_LEVEL"]
    env.update(extra_env or {})
    env.update({"PODIOC_PREFIX": cfg.prefix, "PODIOC_TARGET": target,
                ENV_DIR: AUTOSAVE_DIR})
    labels = {
        MANAGED_LABEL: "true",
        INSTANCE_LABEL: cfg.name,
        PREFIX_LABEL: cfg.prefix,
        CONFIG_LABEL: str(config_path),
        "io.podioc.framework-version": __version__,
    }
    volumes = {
        str(ioc_dir): {"bind": mount, "mode": "ro"},
        f"podioc-autosave-{cfg.name}": {"bind": AUTOSAVE_DIR, "mode": "rw"},
    }
    tmpfs = {"/tmp": f"rw,nosuid,nodev,size={docker_tmpfs_size(settings.tmp_size)},mode=1777"}
    return ContainerSpec(
        name=cfg.name, image=image or settings.image,
        command=["run", target, "--prefix", cfg.prefix], environment=env, labels=labels,
        volumes=volumes, tmpfs=tmpfs,
        stop_timeout=settings.termination_grace_period if stop_timeout is None else stop_timeout)


def unreadable_for_container(ioc_dir: Path, config: Path) -> list[Path]:
    """Paths the container's user (10001, not the owner) could not read in the mount.

    Checks the directory, the config and the directory's files (one level):
    "others" need read (and, for directories, search) permission.
    """
    bad: list[Path] = []
    for path in [ioc_dir, config, *sorted(ioc_dir.iterdir())]:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        need = 0o005 if path.is_dir() else 0o004
        if mode & need != need and path not in bad:
            bad.append(path)
    return bad


def find(client: docker.DockerClient, instance: str | None = None,
         all_states: bool = True) -> list[Container]:
    """podioc-managed containers (of one instance, when given), by label only."""
    filters: dict[str, Any] = {"label": [f"{MANAGED_LABEL}=true"]}
    if instance is not None:
        filters["label"].append(f"{INSTANCE_LABEL}={instance}")
    containers: list[Container] = client.containers.list(all=all_states, filters=filters)
    return containers


def _volume_labels(client: docker.DockerClient, spec: ContainerSpec) -> None:
    """Create the autosave volume with podioc's labels (a no-op when it exists)."""
    import docker.errors

    for source, bind in spec.volumes.items():
        if bind["bind"] != AUTOSAVE_DIR:
            continue
        try:
            client.volumes.get(source)
        except docker.errors.NotFound:
            client.volumes.create(name=source, labels={MANAGED_LABEL: "true",
                                                       INSTANCE_LABEL: spec.name})


def up(spec: ContainerSpec, client: docker.DockerClient | None = None) -> tuple[Container, int]:
    """Start ``spec``'s container, replacing that instance's old one.

    Returns the new container and how many old containers were replaced.
    """
    import docker.errors

    client = client or connect()
    old = find(client, spec.name)
    for container in old:
        _stop_remove(container, spec.stop_timeout)
    _volume_labels(client, spec)
    try:
        container = spec.create(client)
    except docker.errors.ImageNotFound:
        raise PodiocError(f"image {spec.image!r} is not in the local image store: build it "
                          f"with `podioc build <ioc dir> --tag {spec.image}`, or choose "
                          "another with --image (or deploy.image in the config)") from None
    except docker.errors.APIError as exc:
        raise PodiocError(f"the Docker engine refused the container: {exc.explanation or exc}"
                          ) from None
    try:
        container.start()
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
        raise PodiocError(f"the container did not start: {exc.explanation or exc}") from None
    return container, len(old)


def _stop_remove(container: Container, timeout: int) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        container.stop(timeout=timeout)
        container.remove()


def down(instance: str | None = None, client: docker.DockerClient | None = None,
         timeout: int = DEFAULT_STOP_TIMEOUT, remove_volumes: bool = False) -> list[str]:
    """Stop and remove an instance's containers (all podioc's when ``instance`` is None).

    Returns the instance names stopped; raises :class:`NoSuchInstance` when
    a named instance has no container.
    """
    import docker.errors

    client = client or connect()
    containers = find(client, instance)
    if instance is not None and not containers:
        running = sorted({c.labels.get(INSTANCE_LABEL, "?") for c in find(client)})
        hint = f"running: {', '.join(running)}" if running else "none is running"
        raise NoSuchInstance(f"no podioc container runs instance {instance!r} ({hint}; "
                             "see `podioc ps`)")
    names: list[str] = []
    for container in containers:
        name = container.labels.get(INSTANCE_LABEL, container.short_id)
        _stop_remove(container, timeout)
        names.append(name)
        if remove_volumes:
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(f"podioc-autosave-{name}").remove()
    return names


def logs(instance: str, follow: bool = False, tail: int | None = None,
         client: docker.DockerClient | None = None) -> Iterator[bytes]:
    """The instance's output (stdout and stderr), streamed when ``follow``."""
    client = client or connect()
    containers = find(client, instance)
    if not containers:
        raise NoSuchInstance(f"no podioc container runs instance {instance!r} "
                             "(see `podioc ps`)")
    container = containers[0]
    kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "follow": follow,
                              "stream": True, "tail": "all" if tail is None else tail}
    stream: Iterator[bytes] = container.logs(**kwargs)
    return stream


@dataclass(frozen=True)
class InstanceStatus:
    """One row of ``podioc ps``."""

    instance: str
    prefix: str
    state: str
    health: str
    image: str
    container_id: str
    config: str


def ps(client: docker.DockerClient | None = None) -> list[InstanceStatus]:
    """Every podioc-managed container, sorted by instance name."""
    client = client or connect()
    rows = []
    for container in find(client):
        attrs = container.attrs
        state = attrs.get("State", {})
        health = (state.get("Health") or {}).get("Status", "-")
        image = attrs.get("Config", {}).get("Image", "?")
        rows.append(InstanceStatus(
            instance=container.labels.get(INSTANCE_LABEL, "?"),
            prefix=container.labels.get(PREFIX_LABEL, ""),
            state=str(state.get("Status", container.status)),
            health=str(health), image=str(image), container_id=container.short_id,
            config=container.labels.get(CONFIG_LABEL, "")))
    return sorted(rows, key=lambda r: r.instance)
