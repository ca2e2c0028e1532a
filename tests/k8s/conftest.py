"""Tools the Kubernetes tests run: checkov (own venv, see .ci/checkov.sh) and kubectl.

A missing tool skips its tests, or fails them when ``PODIOC_REQUIRE_CHECKOV=1`` /
``PODIOC_REQUIRE_KUBECTL=1`` (set them in CI where the tool is installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import require_or_skip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def checkov_bin() -> str:
    """checkov from PODIOC_CHECKOV, PATH or the venv .ci/checkov.sh makes."""
    candidates = [os.environ.get("PODIOC_CHECKOV", ""), shutil.which("checkov") or "",
                  str(ROOT / ".ci" / "work" / "checkov-venv" / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    require_or_skip("checkov", "checkov is not installed (`bash .ci/checkov.sh --bin` "
                               "installs it into .ci/work/checkov-venv; or set PODIOC_CHECKOV)")


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """kubectl (its built-in kustomize builds the trees; no cluster is contacted)."""
    path = shutil.which("kubectl")
    if path is None:
        require_or_skip("kubectl", "kubectl is not on PATH")
    return path


@pytest.fixture(scope="session")
def offline() -> list[str]:
    """``unshare -n`` when it works (a prefix for commands), so a scanner reaches no network."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []
