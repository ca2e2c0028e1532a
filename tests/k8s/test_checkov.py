"""checkov finds nothing in the manifests but what hostNetwork causes, each skip explained."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from podioc import config as config_mod
from podioc.deploy import manifest_files, manifests
from podioc.deploy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
DEMO = ROOT / "iocs" / "demo" / "demo.yaml"
DIGEST_IMAGE = "podioc@sha256:" + "c" * 64


def scan(checkov: str, offline: list[str], directory: Path,
         framework: str = "kubernetes") -> dict[str, Any]:
    """checkov's JSON report of one framework (offline: --skip-download)."""
    proc = subprocess.run(
        [*offline, checkov, "--skip-download", "--framework", framework, "-d", str(directory),
         "-o", "json"], capture_output=True, text=True, timeout=600)
    start = proc.stdout.find("{")
    start_list = proc.stdout.find("[")
    if start_list != -1 and (start == -1 or start_list < start):
        start = start_list
    assert start != -1, f"checkov printed no report:\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(proc.stdout[start:])
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == framework]
    assert isinstance(report, dict)
    assert report.get("summary", {}).get("parsing_errors", 0) == 0, report["summary"]
    return report


def ids(report: dict[str, Any], kind: str) -> set[str]:
    return {r["check_id"] for r in report.get("results", {}).get(kind, [])}


def failures(report: dict[str, Any]) -> list[str]:
    return [f"{r['check_id']} {r['check_name']} ({r['resource']})"
            for r in report.get("results", {}).get("failed_checks", [])]


def allowed_skips() -> set[str]:
    return {*manifests.HOSTNETWORK_SKIPS, manifests.TAG_SKIP[0]}


@pytest.mark.parametrize("framework", ["kubernetes", "kustomize"])
def test_k8s_directory_has_no_findings(checkov_bin: str, offline: list[str],
                                       framework: str) -> None:
    if framework == "kustomize" and not (shutil.which("kubectl") or shutil.which("kustomize")):
        pytest.skip("checkov's kustomize framework needs kubectl or kustomize on PATH")
    report = scan(checkov_bin, offline, K8S, framework)
    assert not failures(report), "\n".join(failures(report))
    assert report["summary"]["passed"] > 50
    assert ids(report, "skipped_checks") <= allowed_skips()


def render_into(directory: Path, *, strip_skips: bool, image: str | None = None) -> None:
    cfg = config_mod.load(DEMO)
    if image:
        cfg = replace(cfg, deploy={**cfg.deploy, "image": image})
    objects = [manifests.render_namespace("podioc"),
               *manifests.render_instance(cfg, DEMO.read_text(), load_settings(cfg))]
    for obj in objects:
        ann = obj["metadata"].get("annotations", {})
        if strip_skips:
            for key in [k for k in ann if k.startswith("checkov.io/skip")]:
                del ann[key]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "all.yaml").write_text(manifest_files.to_yaml(objects))


def test_each_skip_is_needed_and_nothing_else_fails(checkov_bin: str, offline: list[str],
                                                     tmp_path: Path) -> None:
    """Without its skip annotations the demo fails exactly the skipped checks."""
    render_into(tmp_path, strip_skips=True)
    assert ids(scan(checkov_bin, offline, tmp_path), "failed_checks") == allowed_skips()


def test_digest_pinned_image_fails_only_hostnetwork_checks(checkov_bin: str, offline: list[str],
                                                           tmp_path: Path) -> None:
    render_into(tmp_path / "bare", strip_skips=True, image=DIGEST_IMAGE)
    report = scan(checkov_bin, offline, tmp_path / "bare")
    assert ids(report, "failed_checks") == set(manifests.HOSTNETWORK_SKIPS)
    render_into(tmp_path / "annotated", strip_skips=False, image=DIGEST_IMAGE)
    report = scan(checkov_bin, offline, tmp_path / "annotated")
    assert not failures(report)
    assert ids(report, "skipped_checks") == set(manifests.HOSTNETWORK_SKIPS)


def test_skip_reasons_reach_checkov(checkov_bin: str, offline: list[str]) -> None:
    report = scan(checkov_bin, offline, K8S)
    for result in report["results"]["skipped_checks"]:
        reason = result.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) > 30, result["check_id"]


def test_k8s_yaml_is_plain() -> None:
    """No anchors/aliases or tags a scanner might read differently from the API server."""
    for path in K8S.rglob("*.yaml"):
        text = path.read_text()
        assert "&id" not in text and "*id" not in text and "!!" not in text, path
        list(yaml.safe_load_all(text))
