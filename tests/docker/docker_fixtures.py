"""Fixtures of the Docker tests: an engine, the image (built once), IOC containers.

- No engine: the tests skip, or fail when ``PODIOC_REQUIRE_DOCKER=1`` (CI).
- The image is built once per session through the real ``podioc build``
  entry point, on ``PODIOC_TEST_BASE_IMAGE`` (default ``python:3.12-slim``;
  CI makes ``podioc-base:bookworm`` from Debian packages, see .ci/docker.sh).
- IOC containers use host networking, free ports, a unique prefix, and
  beacons pinned to the loopback broadcast address; clients find them by
  broadcast on 127.255.255.255 with no unicast hint. Every container is
  labelled ``io.podioc.test=<session token>`` and removed by id after its
  test, and by label at the end of the session, whatever happened.

They are defined here and imported by this directory's ``conftest.py``, so
that mypy checks them under a name of their own (``conftest`` is
tests/conftest.py's). Do not add an ``__init__.py`` here: a package named
``docker`` would shadow the Docker SDK.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from docker_support import (
    BASE_IMAGE,
    SESSION,
    TEST_LABEL,
    TEST_TAG,
    Endpoint,
    IocContainer,
    podioc_cli,
)

from harness import require_or_skip


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """A Docker SDK client of a live engine (skip/fail without one)."""
    try:
        import docker.errors

        import docker
    except ImportError:
        require_or_skip("docker", "the Docker SDK (docker package) is not installed")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        require_or_skip("docker", f"no Docker engine: {exc}")
    yield client
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={SESSION}"}):
        container.remove(force=True)
    client.close()


@pytest.fixture(scope="session")
def base_image(engine: Any) -> str:
    """The base image of the test build (present locally, or pulled)."""
    import docker.errors

    try:
        engine.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        try:
            engine.images.pull(BASE_IMAGE)
        except docker.errors.DockerException as exc:
            require_or_skip("docker", f"base image {BASE_IMAGE} is not available ({exc}); "
                                      "set PODIOC_TEST_BASE_IMAGE (CI: .ci/docker.sh makes one)")
    return BASE_IMAGE


@pytest.fixture(scope="session")
def test_image(engine: Any, base_image: str) -> str:
    """The podioc image with iocs/demo, built once per session with ``podioc build``."""
    started = time.monotonic()
    proc = podioc_cli("build", "iocs/demo", "--tag", TEST_TAG, "--base-image", base_image,
                      "--quiet", "--label", f"{TEST_LABEL}.build={SESSION}")
    if proc.returncode != 0:
        pytest.fail(f"podioc build failed (exit {proc.returncode}):\n{proc.stderr[-8000:]}",
                    pytrace=False)
    image_id = proc.stdout.strip().splitlines()[-1]
    assert image_id.startswith("sha256:"), proc.stdout
    print(f"built {TEST_TAG} ({image_id[:19]}) on {base_image} in "
          f"{time.monotonic() - started:.1f} s")
    return TEST_TAG


@pytest.fixture(scope="session")
def podioc_image(test_image: str) -> str:
    """The same image under the name other areas' Docker tests look for."""
    return test_image


@pytest.fixture
def ioc_containers(engine: Any, test_image: str) -> Iterator[Any]:
    """``start(endpoint=None, **container_kwargs)`` -> a serving :class:`IocContainer`."""
    started: list[IocContainer] = []

    def start(endpoint: Endpoint | None = None, wait: bool = True,
              **kwargs: Any) -> IocContainer:
        endpoint = endpoint or Endpoint.fresh()
        env = endpoint.server_env()
        env["PODIOC_PREFIX"] = endpoint.prefix
        env.update(kwargs.pop("environment", {}))
        options: dict[str, Any] = {
            "command": ["run", "/iocs/demo/demo.yaml", "--prefix", endpoint.prefix],
            "environment": env, "network_mode": "host", "read_only": True,
            "labels": {TEST_LABEL: SESSION, "io.podioc.managed": "true",
                       "io.podioc.instance": f"test-{endpoint.prefix.strip(':').lower()}"},
            "detach": True,
        }
        options.update(kwargs)
        container = engine.containers.run(test_image, **options)
        ioc = IocContainer(container, endpoint)
        started.append(ioc)
        if wait:
            ioc.wait_serving()
        return ioc

    yield start
    for ioc in reversed(started):
        try:
            ioc.container.remove(force=True)
        except Exception as exc:  # already gone is fine; anything else is reported
            if "No such container" not in str(exc):
                raise


@pytest.fixture
def endpoint() -> Endpoint:
    """Fresh ports and a unique prefix."""
    return Endpoint.fresh()
