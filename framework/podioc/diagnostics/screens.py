"""Phoebus display builder screens (``.bob``) of IOC instances (``podioc screens``).

One screen per instance, from its description (:mod:`.describe`): a title, the
top-level PVs, one group box per group of PVs (by name segment, as PVI serves
them: :mod:`podioc.model.grouping`; vector members side by side in one box),
then a health panel with the health PVs. One row per PV: a label (the PV's
description, else its name; the tooltip names the PV) and its widget, chosen
by kind and writability (:func:`widget_types`). Value widgets show units and
have alarm-sensitive borders. Several instances also get ``index.bob`` with
a button opening each screen.

The XML is built with :mod:`xml.etree.ElementTree`. The ``pvi`` package's
formatter was considered: it puts each waveform on a sub-screen of its own
and lays out from its own template, where one file per IOC with plots inline
was wanted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..model.grouping import Group, group_pvs

ROW = 26  # px per row
LABEL_W = 220
VALUE_W = 180
LED_W = 20
PLOT_H = 200
PAD = 8
GROUP_HEAD = 26
SCREEN_W = PAD * 4 + LABEL_W + VALUE_W + LED_W + PAD * 2


def widget_types(entry: dict[str, Any]) -> list[str]:
    """The Phoebus widget types showing one described PV, in row order."""
    kind, writable = entry["kind"], entry["writable"]
    if kind == "array":
        return ["xyplot"]
    if kind == "bool":
        return ["led", "checkbox"] if writable else ["led"]
    if kind == "enum" and writable:
        return ["combo"]
    return ["textentry"] if writable else ["textupdate"]


def _sub(parent: ET.Element, tag: str, text: str | int | None = None,
         **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


def _widget(parent: ET.Element, kind: str, name: str, x: int, y: int, w: int, h: int,
            **props: str | int) -> ET.Element:
    version = "3.0.0" if kind in ("textentry", "group", "action_button", "xyplot") else "2.0.0"
    widget = _sub(parent, "widget", type=kind, version=version)
    fields: dict[str, str | int] = {"name": name, "x": x, "y": y, "width": w, "height": h}
    for key, value in {**fields, **props}.items():
        _sub(widget, key, value)
    return widget


class _Screen:
    """Lays rows out top to bottom inside the current container."""

    def __init__(self, described: dict[str, dict[str, Any]]) -> None:
        self.described = described

    def row(self, parent: ET.Element, entry: dict[str, Any], y: int) -> int:
        name = entry["name"]
        label = entry["description"] or name.rsplit(":", 1)[-1]
        units = f" [{entry['units']}]" if entry["units"] else ""
        _widget(parent, "label", f"{name} label", PAD, y, LABEL_W, ROW - 4,
                text=label, tooltip=f"{name}{units}")
        x = PAD + LABEL_W
        if entry["kind"] == "array":
            plot = _widget(parent, "xyplot", name, x - LABEL_W, y + ROW - 4,
                           LABEL_W + VALUE_W + LED_W, PLOT_H, title=label,
                           border_alarm_sensitive="true")
            trace = _sub(_sub(plot, "traces"), "trace")
            for key, value in (("name", name), ("x_pv", ""), ("y_pv", name), ("err_pv", ""),
                               ("axis", "0"), ("trace_type", "1"), ("line_width", "1"),
                               ("point_type", "0"), ("point_size", "4"), ("visible", "true")):
                _sub(trace, key, value)
            axis = _sub(_sub(plot, "y_axes"), "y_axis")
            _sub(axis, "title", entry["units"])
            _sub(axis, "autoscale", "true")
            return y + ROW + PLOT_H
        for kind in widget_types(entry):
            common = {"pv_name": name, "border_alarm_sensitive": "true", "tooltip": name}
            if kind == "led":
                _widget(parent, kind, name, x, y + 2, LED_W, LED_W, **common)
                x += LED_W + PAD
            elif kind == "checkbox":
                _widget(parent, kind, f"{name} checkbox", x, y, VALUE_W - LED_W - PAD,
                        ROW - 4, label=(entry["choices"] or ["", ""])[1], **common)
            else:
                extra = {"items_from_pv": "true"} if kind == "combo" else {"show_units": "true"}
                _widget(parent, kind, name, x, y, VALUE_W, ROW - 4, **common, **extra)
        return y + ROW

    def group(self, parent: ET.Element, group: Group, x: int, y: int, skip: set[str]) -> int:
        """Rows of ``group``'s own PVs, then a box per sub-group; returns the next y."""
        for signal in group.signals.values():
            if signal.pv not in skip:
                y = self.row(parent, self.described[signal.pv], y)
        children = [*group.groups.items(), *((f"{n}", g) for n, g in group.vector.items())]
        for entry, child in children:
            label = child.pv_prefix.rstrip(":").rsplit(":", 1)[-1] or entry
            box = _widget(parent, "group", label, x, y, SCREEN_W - x - PAD * 2, 0)
            inner = self.group(box, child, PAD, 0, skip)
            box.find("height").text = str(inner + GROUP_HEAD)  # type: ignore[union-attr]
            y += inner + GROUP_HEAD + PAD
        return y


def screen(doc: dict[str, Any], title: str) -> ET.ElementTree:
    """The ``.bob`` document of one described instance (``describe_instance`` output)."""
    described = {p["name"]: p for p in doc["pvs"]}
    health = {name for name, p in described.items() if p["health"]}
    root = group_pvs(doc["prefix"], described, lambda name: bool(described[name]["writable"]))
    display = ET.Element("display", version="2.0.0")
    _sub(display, "name", title)
    _widget(display, "label", "title", PAD, PAD, SCREEN_W - PAD * 2, 30, text=title,
            horizontal_alignment="1")
    layout = _Screen(described)
    y = layout.group(display, root, PAD, PAD + 40, health)
    if health:
        box = _widget(display, "group", "Health", PAD, y, SCREEN_W - PAD * 2, 0)
        inner = 0
        for name in sorted(health):
            inner = layout.row(box, described[name], inner)
        box.find("height").text = str(inner + GROUP_HEAD)  # type: ignore[union-attr]
        y += inner + GROUP_HEAD + PAD
    _sub(display, "width", SCREEN_W)
    _sub(display, "height", y + PAD)
    ET.indent(display)
    return ET.ElementTree(display)


def index(screens: list[tuple[str, str]]) -> ET.ElementTree:
    """A screen of buttons, one per ``(title, file name)``, each opening that screen."""
    display = ET.Element("display", version="2.0.0")
    _sub(display, "name", "IOCs")
    for i, (title, file) in enumerate(screens):
        button = _widget(display, "action_button", title, PAD, PAD + i * (ROW + 4) * 2,
                         LABEL_W + VALUE_W, ROW * 2, text=title)
        action = _sub(_sub(button, "actions"), "action", type="open_display")
        for key, value in (("file", file), ("target", "tab"), ("description", title)):
            _sub(action, key, value)
    _sub(display, "width", LABEL_W + VALUE_W + PAD * 2)
    _sub(display, "height", PAD * 2 + len(screens) * (ROW + 4) * 2)
    ET.indent(display)
    return ET.ElementTree(display)


def screen_files(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """File name -> XML text of what :func:`write_screens` writes."""
    out: dict[str, str] = {}
    entries: list[tuple[str, str]] = []
    for name, doc in docs:
        stem = name
        while f"{stem}.bob" in out:
            stem += "-2"
        title = f"{doc['ioc_class'].rsplit(':', 1)[-1]} {doc['prefix']}".strip()
        out[f"{stem}.bob"] = _text(screen(doc, title))
        entries.append((title, f"{stem}.bob"))
    if len(docs) > 1:
        out["index.bob"] = _text(index(entries))
    return out


def _text(tree: ET.ElementTree) -> str:
    root = tree.getroot()
    assert root is not None
    text: str = ET.tostring(root, encoding="unicode", xml_declaration=True)
    return text + "\n"


def write_screens(docs: list[tuple[str, dict[str, Any]]], out: Path) -> list[Path]:
    """Write one ``NAME.bob`` per ``(name, description)`` (and ``index.bob`` for several)
    into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in screen_files(docs).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
