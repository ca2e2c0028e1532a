"""``podioc screens``: well-formed .bob files, one row per PV with the widget its kind and
writability call for, and pv_names a running IOC answers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import IocProcess, podioc, pva_client
from harness.sims import SimProcess
from harness.testiocs import REPO, TESTS

IocFactory = Callable[..., IocProcess]
CHANNELS = TESTS / "integration" / "iocs" / "channels.py"
#: every IOC under iocs/ (their instance configs), plus the grouped test IOC
TARGETS = [*sorted((REPO / "iocs").glob("*/*.yaml")), CHANNELS]


def _pv_widgets(path: Path) -> Counter[tuple[str, str]]:
    """(PV name, widget type) of every widget naming a PV, counted."""
    found: Counter[tuple[str, str]] = Counter()
    for widget in ET.parse(path).getroot().iter("widget"):
        for tag in ("pv_name", "traces/trace/y_pv"):
            element = widget.find(tag)
            if element is not None and element.text:
                found[(element.text, widget.attrib["type"])] += 1
    return found


def _expected(pv: dict[str, Any]) -> set[str]:
    if pv["kind"] == "array":
        return {"xyplot"}
    if pv["kind"] == "bool":
        return {"led", "checkbox"} if pv["writable"] else {"led"}
    if pv["kind"] == "enum" and pv["writable"]:
        return {"combo"}
    return {"textentry" if pv["writable"] else "textupdate"}


@pytest.mark.parametrize("target", TARGETS, ids=lambda p: p.stem)
def test_every_pv_has_one_row_with_the_right_widgets(target: Path, tmp_path: Path) -> None:
    out = podioc(["screens", str(target), "-o", str(tmp_path)])
    assert out.returncode == 0, out.stderr
    (path,) = [Path(line) for line in out.stdout.split()]
    assert path.suffix == ".bob" and path.parent == tmp_path
    root = ET.parse(path).getroot()  # well-formed, or this raises
    assert root.tag == "display" and root.findtext("name")
    described = json.loads(podioc(["describe", str(target), "--json"]).stdout)["pvs"]
    widgets = _pv_widgets(path)
    for pv in described:
        kinds = {kind for (name, kind) in widgets if name == pv["name"]}
        assert kinds == _expected(pv), pv["name"]
        assert all(widgets[(pv["name"], kind)] == 1 for kind in kinds), pv["name"]
    assert {name for name, _ in widgets} == {pv["name"] for pv in described}
    for widget in root.iter("widget"):  # value widgets show alarms
        if widget.find("pv_name") is not None or widget.attrib["type"] == "xyplot":
            assert widget.findtext("border_alarm_sensitive") == "true"
    labels = {w.findtext("text") for w in root.iter("widget") if w.attrib["type"] == "label"}
    assert {pv["description"] for pv in described if pv["description"]} <= labels
    health = [w for w in root.iter("widget") if w.findtext("name") == "Health"]
    assert len(health) == 1 and health[0].attrib["type"] == "group"
    assert any(w.findtext("pv_name", "").endswith("HEARTBEAT") for w in health[0].iter("widget"))


def test_groups_and_index_for_several_iocs(tmp_path: Path) -> None:
    out = podioc(["screens", str(TARGETS[0]), str(CHANNELS), "-o", str(tmp_path),
                  "--prefix", "P:"])
    assert out.returncode == 0, out.stderr
    names = sorted(Path(line).name for line in out.stdout.split())
    assert names == sorted([f"{TARGETS[0].stem}.bob", "channels.bob", "index.bob"])
    index = ET.parse(tmp_path / "index.bob").getroot()
    files = sorted(a.findtext("file", "") for a in index.iter("action"))
    assert files == sorted(n for n in names if n != "index.bob")
    screen = ET.parse(tmp_path / "channels.bob").getroot()
    groups = {w.findtext("name"): w for w in screen.iter("widget")
              if w.attrib["type"] == "group"}
    assert {"CH", "CH1", "CH2", "CH3", "STAGE", "Health"} <= set(groups)
    ch2 = {w.findtext("pv_name") for w in groups["CH2"].iter("widget")} - {None}
    assert ch2 == {"P:CH2:GAIN", "P:CH2:NAME", "P:CH2:VOLTAGE"}


def _with_simulator(target: Path, tmp_path: Path, stack: ExitStack) -> Path:
    """An example IOC that asks its device for its PVs at start-up needs it: start its
    TCP simulator and return a copy of ``target`` pointing at it (else ``target``)."""
    sim_script = target.parent / "sim.py"
    if target.parent != REPO / "iocs" / "psu":
        return target
    sim = stack.enter_context(SimProcess(sim_script, log_dir=tmp_path))
    config = yaml.safe_load(target.read_text())
    module, _, cls = config["ioc"].partition(":")
    config["ioc"] = f"{target.parent / module}:{cls}"
    config["args"] = {**config.get("args", {}), "port": sim.port}
    copy = tmp_path / f"{target.stem}-sim.yaml"
    copy.write_text(yaml.safe_dump(config))
    return copy


def test_pv_names_resolve_against_the_running_iocs(ioc_factory: IocFactory,
                                                   tmp_path: Path) -> None:
    for target in TARGETS:
        with ExitStack() as stack:
            _resolve_screen_names(ioc_factory, target, tmp_path,
                                  _with_simulator(target, tmp_path, stack))


def _resolve_screen_names(ioc_factory: IocFactory, target: Path, tmp_path: Path,
                          served: Path) -> None:
    """The screen of ``target`` names only PVs the IOC serving ``served`` answers."""
    ioc = ioc_factory(served, name=target.stem)
    out = podioc(["screens", str(target), "-o", str(tmp_path / target.stem),
                  "--prefix", ioc.prefix])
    assert out.returncode == 0, out.stderr
    names = sorted({name for name, _ in _pv_widgets(Path(out.stdout.split()[0]))})
    assert names and all(n.startswith(ioc.prefix) for n in names)
    with pva_client(ioc) as ctx:
        values = ctx.get(names, timeout=10, throw=False)
    failed = {n: v for n, v in zip(names, values, strict=True) if isinstance(v, Exception)}
    assert not failed


def test_bad_target_is_refused_with_a_message(tmp_path: Path) -> None:
    out = podioc(["screens", str(tmp_path / "missing.yaml"), "-o", str(tmp_path)])
    assert out.returncode != 0 and "missing.yaml" in out.stderr
    assert list(tmp_path.iterdir()) == []
