"""Shared pytest setup for every test area.

- ``harness`` (tests/harness) is importable from any test module.
- A skip of a test marked ``docker`` or ``netns`` becomes a failure when
  ``PODIOC_REQUIRE_DOCKER=1`` / ``PODIOC_REQUIRE_NETNS=1`` (CI sets them, so
  green means everything ran). Fixtures may call
  ``harness.require_or_skip(kind, reason)`` directly for the same effect.
- A failing test's report gets the log of every IOC process alive at the time.
- Fixtures ``ioc_factory`` (function scope) and ``module_ioc_factory`` start
  ``podioc run`` subprocesses with free ports and unique prefixes and stop
  them afterwards (SIGTERM, then SIGKILL by PID if needed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import LIVE, IocProcess, require_or_skip  # noqa: E402
from harness.require import forbid_skip  # noqa: E402
from harness.testiocs import DEMO_YAML, REPO  # noqa: E402

__all__ = ["DEMO_YAML", "REPO", "TESTS", "require_or_skip"]

IocFactory = Callable[..., IocProcess]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[
        None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    forbid_skip(item, report)
    if report.failed:
        for ioc in list(LIVE):
            text = ioc.log_text()
            tail = text[-6000:]
            report.sections.append((f"podioc IOC {ioc.prefix} ({ioc.log_path})", tail))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for ioc in list(LIVE):  # never leave an IOC running, whatever happened
        ioc.stop(timeout=5.0)


def _factory(log_dir: Path) -> Iterator[IocFactory]:
    started: list[IocProcess] = []

    def start(target: str | Path = DEMO_YAML, **kw: Any) -> IocProcess:
        kw.setdefault("log_dir", log_dir)
        ioc = IocProcess(target, **kw)
        started.append(ioc)
        return ioc.start()

    yield start
    for ioc in reversed(started):
        ioc.stop()


@pytest.fixture
def ioc_factory(tmp_path: Path) -> Iterator[IocFactory]:
    """``start(target=DEMO_YAML, **IocProcess kwargs)`` -> a running IocProcess."""
    yield from _factory(tmp_path)


@pytest.fixture(scope="module")
def module_ioc_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IocFactory]:
    """Like ``ioc_factory`` but the IOCs live for the whole module."""
    yield from _factory(tmp_path_factory.mktemp("ioc"))
