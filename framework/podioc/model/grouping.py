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

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Attribute names an ophyd-async Device has or refuses (bluesky protocol methods).
RESERVED = frozenset({
    "check_value", "children", "clear_sub", "collect", "collect_asset_docs", "collect_pages",
    "complete", "connect", "describe", "describe_collect", "describe_configuration",
    "get_index", "hints", "kickoff", "locate", "log", "name", "parent", "pause", "prepare",
    "read", "read_configuration", "resume", "set", "set_name", "stage", "stop", "subscribe",
    "trigger", "unstage"})
_NUMBERED = re.compile(r"^(?P<stem>.*[A-Za-z_])(?P<n>[1-9][0-9]*)$")
_NOT_WORD = re.compile(r"\W", re.ASCII)


@dataclass(frozen=True)
class Signal:
    """One PV in a group: its entry name, full PV name and whether clients may write it."""

    entry: str
    pv: str
    writable: bool


class _Node:
    __slots__ = ("groups", "leaves")

    def __init__(self) -> None:
        self.leaves: list[tuple[str, str]] = []  # (segment, PV name)
        self.groups: dict[str, _Node] = {}  # segment -> node


class Group:
    """A device: its PVs share ``pv_prefix``; ``vector`` holds numbered members.

    ``groups`` and ``vector`` are built with the tree; ``signals`` (one entry per
    PV, the bulk of a large IOC) only when first asked for.
    """

    def __init__(self, pv_prefix: str, node: _Node | None = None,
                 writable: Callable[[str], bool] = lambda _name: False) -> None:
        self.pv_prefix = pv_prefix
        self._writable = writable
        self.groups: dict[str, Group] = {}
        self.vector: dict[int, Group] = {}
        self._leaves = node.leaves if node is not None else []
        self._taken: set[str] = set()
        if node is not None:
            self._add_groups(node)

    def _add_groups(self, node: _Node) -> None:
        members: dict[str, dict[int, str]] = {}
        for segment in sorted(node.groups):
            match = _NUMBERED.match(segment)
            if match:
                members.setdefault(match["stem"], {})[int(match["n"])] = segment
        leaves = {leaf[0] for leaf in node.leaves}
        in_vectors: set[str] = set()
        for stem, numbered in sorted(members.items()):
            if len(numbered) < 2 or stem in node.groups or stem in leaves:
                continue
            vector = Group(f"{self.pv_prefix}{stem}:")
            for n, segment in sorted(numbered.items()):
                vector.vector[n] = Group(f"{self.pv_prefix}{segment}:", node.groups[segment],
                                         self._writable)
                in_vectors.add(segment)
            self.groups[_unique(entry_name(stem), self._taken)] = vector
        for segment in sorted(node.groups):
            if segment not in in_vectors:
                self.groups[_unique(entry_name(segment), self._taken)] = Group(
                    f"{self.pv_prefix}{segment}:", node.groups[segment], self._writable)

    @functools.cached_property
    def signals(self) -> dict[str, Signal]:
        """Entry name -> signal, sorted by PV name segment."""
        out: dict[str, Signal] = {}
        for segment, pv in sorted(self._leaves):
            entry = _unique(entry_name(segment), self._taken)
            out[entry] = Signal(entry, pv, self._writable(pv))
        return out

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
    name = segment.lower()
    if not (name.isidentifier() and name.isascii()):
        name = _NOT_WORD.sub("_", name) or "_"
        if name[0].isdigit():
            name = "_" + name
    return name + "_" if name in RESERVED else name


def group_pvs(prefix: str, names: Iterable[str], writable: Callable[[str], bool]) -> Group:
    """The tree of the PV ``names`` (those not starting with ``prefix`` are left out);
    ``writable(name)`` is asked when a group's signals are first needed."""
    root = _Node()
    start = len(prefix)
    for name in names:
        if not name.startswith(prefix):
            continue
        if name.find(":", start) < 0:  # the common case: a PV of the top group
            root.leaves.append((name[start:], name))
            continue
        *path, leaf = name[start:].split(":")
        node = root
        for segment in path:
            node = node.groups.get(segment) or node.groups.setdefault(segment, _Node())
        node.leaves.append((leaf, name))
    return Group(prefix, root, writable)


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
