"""Fixtures for the fuzz and resource tests: one Target IOC per module and normal clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from harness import IocProcess

from .checks import FUZZ_ACCESS, NAMES, Health, rss_mb, target_config

#: Settings of every property test here (a decorator): reproducible examples in CI
#: (the fuzz script explores at random), no deadline (network round trips).
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def fuzz_ioc(module_ioc_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> IocProcess:
    """A Target IOC (4096-element BIG rewritten at 10 Hz, TICKS at 20 Hz, access rules)."""
    config = target_config(tmp_path_factory.mktemp("fuzz"), big=4096, big_period=0.1,
                           tick=0.05, access=FUZZ_ACCESS)
    return module_ioc_factory(config, name="fuzz")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def health(fuzz_ioc: IocProcess) -> Iterator[Health]:
    """Normal CA and PVA clients that must keep working through every batch."""
    with Health(fuzz_ioc) as checker:
        checker.check()
        yield checker


@pytest.fixture(scope="module")
def names(fuzz_ioc: IocProcess) -> list[str]:
    return [fuzz_ioc.pv(n) for n in NAMES]


#: How much the IOC's resident memory may grow over a module, MiB.
RSS_BUDGET_MIB = 60.0


@pytest.fixture(scope="module")
def rss_budget(fuzz_ioc: IocProcess, health: Health) -> Iterator[dict[str, float]]:
    """Samples the IOC's memory (see :func:`sample`); the module fails if any sample,
    or the figure at its end, exceeds the start by ``RSS_BUDGET_MIB``."""
    figures = {"start": rss_mb(fuzz_ioc.pid)}
    figures["peak"] = figures["start"]
    yield figures
    if fuzz_ioc.alive():
        figures["end"] = rss_mb(fuzz_ioc.pid)
        figures["peak"] = max(figures["peak"], figures["end"])
    assert figures["peak"] - figures["start"] < RSS_BUDGET_MIB, (
        f"the IOC's memory grew by {figures['peak'] - figures['start']:.1f} MiB "
        f"(budget {RSS_BUDGET_MIB:g} MiB): {figures}")


def sample(figures: dict[str, float], ioc: IocProcess) -> None:
    figures["peak"] = max(figures["peak"], rss_mb(ioc.pid))


__all__ = ["FUZZ", "Path", "sample"]
