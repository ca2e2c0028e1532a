"""Group an IOC's PVs into a tree of devices by the colon-separated segments of their names.

``PREFIX:CH3:VOLTAGE`` is the signal ``voltage`` of the group ``ch3``; a flat
IOC is one group. Sibling groups ``CH1``, ``CH2``, ... (two or more, same stem,
numbered without leading zeros) form a vector ``ch`` with numbered members,
as a sub-device vector serves them. PVI (:mod:`podioc.protocols.pva.pvi`),
screens and the terminal monitor all read this one tree.

Entry names are what a client makes attributes of (ophyd-async builds a
device from them): the segment in lower case, with anything that is not a
letter, digit or underscore replaced by ``_``; a name that would clash with
a sibling or with an attribute of ophyd-async devices (``name``, ``stage``,
``read``...) gets a trailing ``_`` (``stage_``), as ophyd-async asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Attribute names an ophyd-async Device has or refuses (bluesky protocol methods).
RESERVED = frozenset({
    "check_value", "children", "clear_sub", "collect", "collect_asset_docs", "collect_pages",
    "complete", "connect", "describe", "describe_collect", "describe_configuration",
    "get_index", "hints", "kickoff", "locate", "log", "name", "parent", "pause", "prepare",
    "read", "read_configuration", "resume", "set", "set_name", "stage", "stop", "subscribe",
    "trigger", "unstage"})
_NUMBERED = re.compile(r"^(?P<stem>.*[A-Za-z_])(?P<n>[1-9][0-9]*)$")


@dataclass(frozen=True)
class Signal:
    """One PV in a group: its entry name, full PV name and whether clients may write it."""

    entry: str
    pv: str
    writable: bool


@dataclass
class Group:
    """A device: its PVs share ``pv_prefix``; ``vector`` holds numbered members."""

    pv_prefix: str
    signals: dict[str, Signal] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    vector: dict[int, Group] = field(default_factory=dict)

    def walk(self) -> Iterable[Group]:
        """This group and every group below it, parents first."""
        yield self
        for child in [*self.groups.values(), *self.vector.values()]:
            yield from child.walk()

    def all_signals(self) -> Iterable[Signal]:
        """Every signal of this group and of the groups below it."""
        for group in self.walk():
            yield from group.signals.values()


def entry_name(segment: str) -> str:
    """The attribute-safe entry name of a PV name segment (see the module docstring)."""
    name = re.sub(r"\W", "_", segment.lower(), flags=re.ASCII) or "_"
    if name[0].isdigit():
        name = "_" + name
    return name + "_" if name in RESERVED else name


@dataclass
class _Node:
    signals: dict[str, Signal] = field(default_factory=dict)  # segment -> signal
    groups: dict[str, _Node] = field(default_factory=dict)  # segment -> node


def group_pvs(prefix: str, pvs: Iterable[tuple[str, bool]]) -> Group:
    """The tree of ``(pv name, writable)`` pairs; names not starting with ``prefix`` are
    left out."""
    root = _Node()
    for name, writable in pvs:
        if not name.startswith(prefix):
            continue
        *path, leaf = name[len(prefix):].split(":")
        node = root
        for segment in path:
            node = node.groups.setdefault(segment, _Node())
        node.signals[leaf] = Signal(leaf, name, writable)
    return _build(root, prefix)


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _build(node: _Node, pv_prefix: str) -> Group:
    group = Group(pv_prefix)
    taken: set[str] = set()
    members: dict[str, dict[int, str]] = {}
    for segment in sorted(node.groups):
        match = _NUMBERED.match(segment)
        if match:
            members.setdefault(match["stem"], {})[int(match["n"])] = segment
    in_vectors: set[str] = set()
    for stem, numbered in sorted(members.items()):
        if len(numbered) < 2 or stem in node.groups or stem in node.signals:
            continue
        vector = Group(f"{pv_prefix}{stem}:")
        for n, segment in sorted(numbered.items()):
            vector.vector[n] = _build(node.groups[segment], f"{pv_prefix}{segment}:")
            in_vectors.add(segment)
        group.groups[_unique(entry_name(stem), taken)] = vector
    for segment in sorted(node.groups):
        if segment not in in_vectors:
            group.groups[_unique(entry_name(segment), taken)] = _build(
                node.groups[segment], f"{pv_prefix}{segment}:")
    for segment in sorted(node.signals):
        signal = node.signals[segment]
        entry = _unique(entry_name(segment), taken)
        group.signals[entry] = Signal(entry, signal.pv, signal.writable)
    return group
