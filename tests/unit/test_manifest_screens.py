"""``podioc manifest --screens``: the instance's Phoebus screen in an opt-in ConfigMap."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from click.testing import CliRunner

from podioc.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "iocs" / "demo" / "demo.yaml"


def _objects(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["manifest", str(DEMO), *args])
    assert result.exit_code == 0, result.output
    text = result.stdout
    return [o for o in yaml.safe_load_all(text) if o]


def test_screens_configmap_is_opt_in() -> None:
    plain = _objects()
    assert not any(o["metadata"]["name"].endswith("-screens") for o in plain)
    objs = _objects("--screens")
    assert [o["kind"] for o in objs] == [o["kind"] for o in plain[:3]] + ["ConfigMap"] + [
        o["kind"] for o in plain[3:]]
    (screens,) = [o for o in objs if o["metadata"]["name"] == "demo-screens"]
    assert screens["metadata"]["labels"]["app.kubernetes.io/component"] == "screens"
    assert screens["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"
    assert list(screens["data"]) == ["demo.bob"]
    root = ET.fromstring(screens["data"]["demo.bob"].encode())
    pvs = {w.findtext("pv_name") for w in root.iter("widget")} - {None}
    assert "DEMO:SETPOINT" in pvs and "DEMO:HEARTBEAT" in pvs
    kubernetes_validate.validate(screens, kubernetes_validate.utils.latest_version(),
                                 strict=True)
    # the other objects are the same as without --screens
    assert [o for o in objs if o is not screens] == plain


def test_kustomize_layout_lists_the_screens_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["manifest", str(DEMO), "--screens", "--kustomize",
                                      "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    kustomization = yaml.safe_load((tmp_path / "demo" / "kustomization.yaml").read_text())
    assert "screens.yaml" in kustomization["resources"]
    screens = yaml.safe_load((tmp_path / "demo" / "screens.yaml").read_text())
    assert screens["kind"] == "ConfigMap" and "demo.bob" in screens["data"]
