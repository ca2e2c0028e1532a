"""Every kustomization under k8s/ builds, and the root one holds every rendered object."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


def kustomizations() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def build(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize {directory}:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.mark.parametrize("directory", kustomizations(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_kustomization_builds(kubectl_bin: str, directory: Path) -> None:
    assert build(kubectl_bin, directory)


def key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace", ""), meta["name"]


def test_root_build_is_the_rendered_objects(kubectl_bin: str) -> None:
    built = {key(d): d for d in build(kubectl_bin, K8S)}
    files = {}
    for path in K8S.rglob("*.yaml"):
        if path.name != "kustomization.yaml":
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    files[key(doc)] = doc
    assert built == files
    assert {k[0] for k in built} == {"Namespace", "ServiceAccount", "ConfigMap", "Service",
                                     "StatefulSet"}
