"""``podioc build`` puts each IOC directory's screens into the build context (and so at
/iocs/NAME/screens/ in the image), without Docker: the context is checked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from podioc.cli import cli, image_cmds
from podioc.cli.image_cmds import screens_of
from podioc.deploy.buildcontext import BuildOptions, assemble_context
from podioc.deploy.engine import ImageBuildError
from podioc.deploy.source import framework_source

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "iocs" / "demo"


def test_context_holds_the_screens_of_each_instance_config(tmp_path: Path) -> None:
    bobs, problems = screens_of((DEMO_DIR,))
    assert problems == []
    assert list(bobs) == ["demo"] and list(bobs["demo"]) == ["demo.bob"]
    opts = BuildOptions(ioc_dirs=(DEMO_DIR,), screens=bobs)
    ctx = assemble_context(opts, tmp_path / "ctx", framework_source())
    screen = ctx / "iocs" / "demo" / "screens" / "demo.bob"
    root = ET.parse(screen).getroot()
    assert "DEMO:TEMPERATURE" in {w.findtext("pv_name") for w in root.iter("widget")}
    assert not (DEMO_DIR / "screens").exists()  # nothing written into the source tree


def test_several_configs_get_an_index(tmp_path: Path) -> None:
    ioc = tmp_path / "heater"
    ioc.mkdir()
    (ioc / "ioc.py").write_text((DEMO_DIR / "ioc.py").read_text())
    for stem, prefix in (("one", "A:"), ("two", "B:")):
        (ioc / f"{stem}.yaml").write_text(f"ioc: ioc.py:DemoDevice\nprefix: '{prefix}'\n")
    assert sorted(screens_of((ioc,))[0]["heater"]) == ["index.bob", "one.bob", "two.bob"]


def test_a_config_that_cannot_be_described_gets_no_screen_and_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ioc = tmp_path / "broken"
    ioc.mkdir()
    (ioc / "x.yaml").write_text("ioc: missing.py:Nope\nprefix: 'X:'\n")
    seen: list[BuildOptions] = []

    def fake_build(opts: BuildOptions, **_: object) -> None:
        seen.append(opts)
        raise ImageBuildError("stop here")

    monkeypatch.setattr(image_cmds, "build_image", fake_build)
    result = CliRunner().invoke(cli, ["build", str(ioc)])
    assert "note: no screen for" in result.output and "missing.py" in result.output
    assert "--no-screens" in result.output
    assert len(seen) == 1 and seen[0].screens == {}  # the build itself still runs


def test_ioc_code_that_does_not_import_gets_a_note(tmp_path: Path) -> None:
    ioc = tmp_path / "broken"
    ioc.mkdir()
    (ioc / "ioc.py").write_text("from podioc import IOC\n\nclass Broken(IOC:\n    pass\n")
    (ioc / "broken.yaml").write_text("ioc: ioc.py:Broken\nprefix: 'B:'\n")
    bobs, problems = screens_of((ioc,))
    assert bobs == {}
    assert len(problems) == 1 and "broken.yaml: SyntaxError" in problems[0]
