"""Fixtures for the simulated-beamline tests (root, Linux network namespaces).

Every test here is marked ``netns``; when namespaces cannot be made the tests
skip, and with ``PODIOC_REQUIRE_NETNS=1`` (CI) such a skip is a failure (the
hook lives in tests/conftest.py, ``require_or_skip`` in tests/harness).

They are defined here and imported by this directory's ``conftest.py``, so
that mypy checks them under a name of their own (``conftest`` is
tests/conftest.py's).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import netns_support
import pytest
import topology
from topology import Topology

from harness import require_or_skip

TopologyFactory = Callable[..., Topology]


@pytest.fixture(scope="session")
def netns() -> None:
    """Namespaces can be made here (else skip, or fail in CI); stale ones are swept."""
    reason = topology.available()
    if reason:
        require_or_skip("netns", reason)
    topology.sweep_stale()


@pytest.fixture(scope="session")
def nat() -> None:
    """iptables is there for the NAT tests."""
    reason = topology.nat_available()
    if reason:
        require_or_skip("netns", reason)


def _factory() -> Iterator[TopologyFactory]:
    made: list[Topology] = []

    def make(**kw: Any) -> Topology:
        topo = Topology(**kw)
        made.append(topo)
        return topo

    yield make
    for topo in made:
        topo.close()
    left = [item for topo in made for item in topo.leftovers()]
    assert not left, f"topology left behind: {left}"


@pytest.fixture
def make_topology(netns: None) -> Iterator[TopologyFactory]:
    """``make(subnet=...)`` -> a Topology closed (and checked gone) after the test."""
    yield from _factory()


@pytest.fixture(scope="module")
def module_topology(netns: None) -> Iterator[TopologyFactory]:
    """Like ``make_topology`` for the whole module."""
    yield from _factory()


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netns")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[
        None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for ioc in list(netns_support.LIVE):
            report.sections.append((f"IOC {ioc.prefix} in {ioc.host.ns} ({ioc.log_path})",
                                    ioc.log()[-5000:]))
