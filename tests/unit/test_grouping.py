"""Grouping PVs into devices by name segment (podioc.model.grouping), as PVI serves them."""

from __future__ import annotations

from podioc.model.grouping import Group, entry_name, group_pvs


def _shape(group: Group) -> dict[str, object]:
    """A comparable picture of a tree: entries with their PV or sub-tree."""
    out: dict[str, object] = {e: (s.pv, s.writable) for e, s in group.signals.items()}
    out.update({e: (g.pv_prefix, _shape(g)) for e, g in group.groups.items()})
    out.update({f"__{n}": (g.pv_prefix, _shape(g)) for n, g in group.vector.items()})
    return out


def test_flat_ioc_is_one_group() -> None:
    root = group_pvs("D:", ["D:TEMP", "D:SETPOINT"], {"D:SETPOINT"}.__contains__)
    assert _shape(root) == {"temp": ("D:TEMP", False), "setpoint": ("D:SETPOINT", True)}
    assert root.pv_prefix == "D:" and [g.pv_prefix for g in root.walk()] == ["D:"]


def test_segments_make_groups_and_numbered_siblings_a_vector() -> None:
    names = ["P:CH1:V", "P:CH2:V", "P:CH2:GAIN", "P:STAGE:X", "P:ADC7:RAW", "P:TOTAL"]
    root = group_pvs("P:", names, lambda n: n.endswith("GAIN"))
    assert _shape(root) == {
        "ch": ("P:CH:", {"__1": ("P:CH1:", {"v": ("P:CH1:V", False)}),
                         "__2": ("P:CH2:", {"v": ("P:CH2:V", False),
                                            "gain": ("P:CH2:GAIN", True)})}),
        "stage_": ("P:STAGE:", {"x": ("P:STAGE:X", False)}),  # 'stage' is a bluesky verb
        "adc7": ("P:ADC7:", {"raw": ("P:ADC7:RAW", False)}),  # one member: not a vector
        "total": ("P:TOTAL", False)}
    assert sorted(s.pv for s in root.all_signals()) == sorted(names)


def test_no_vector_when_the_stem_is_taken_or_numbers_have_leading_zeros() -> None:
    root = group_pvs("", ["CH:A", "CH1:A", "CH2:A", "M01:A", "M02:A"], bool)
    assert set(root.groups) == {"ch", "ch1", "ch2", "m01", "m02"}
    assert all(not g.vector for g in root.walk())


def test_a_signal_and_a_group_of_the_same_segment_both_keep_an_entry() -> None:
    root = group_pvs("X:", ["X:MOTOR", "X:MOTOR:RBV", "X:Motor"], bool)
    assert set(root.groups) == {"motor"}
    assert {e: s.pv for e, s in root.signals.items()} == {"motor_": "X:MOTOR",
                                                         "motor__": "X:Motor"}


def test_names_outside_the_prefix_are_left_out() -> None:
    root = group_pvs("A:", ["A:X", "B:Y"], bool)
    assert [s.pv for s in root.all_signals()] == ["A:X"]


def test_entry_names_are_attribute_safe() -> None:
    assert [entry_name(s) for s in ("TEMP", "Set-Point", "1ST", "", "name", "READ")] == [
        "temp", "set_point", "_1st", "_", "name_", "read_"]
    assert all(entry_name(s).isidentifier() for s in ("a.b", "x[1]", "ü", "<>"))
