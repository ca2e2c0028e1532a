"""Skips that CI turns into failures: PODIOC_REQUIRE_<KIND>=1 means "this must run"."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

#: Marker names whose skips CI can forbid, and the variable that forbids them.
STRICT_KINDS = ("docker", "netns", "gige")


def required(kind: str) -> bool:
    """True when ``PODIOC_REQUIRE_<KIND>=1`` (e.g. PODIOC_REQUIRE_DOCKER) is set."""
    return os.environ.get(f"PODIOC_REQUIRE_{kind.upper()}", "").strip() == "1"


def require_or_skip(kind: str, reason: str) -> NoReturn:
    """Skip the test because ``kind`` is unavailable, or fail if CI requires it.

    Call it where a test (or fixture) finds Docker, network namespaces, ... missing.
    """
    if required(kind):
        pytest.fail(f"{kind} is required here (PODIOC_REQUIRE_{kind.upper()}=1) but "
                    f"unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def forbid_skip(item: Any, report: Any) -> None:
    """Turn ``report`` (a skipped test report) into a failure when ``item`` is marked
    with a kind in :data:`STRICT_KINDS` whose ``PODIOC_REQUIRE_<KIND>=1`` is set.

    Called from the ``pytest_runtest_makereport`` hook in tests/conftest.py, so every
    way of skipping (``pytest.skip``, ``skipif``, ``importorskip``) is caught.
    """
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    for kind in STRICT_KINDS:
        if item.get_closest_marker(kind) is not None and required(kind):
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            report.outcome = "failed"
            report.longrepr = (f"{kind} test skipped but PODIOC_REQUIRE_{kind.upper()}=1 "
                               f"forbids skips: {reason}")
            return
