"""The autosave file format, the files on disk and the settings (no network, tmp dirs only)."""

from __future__ import annotations

import errno
import math
import os
import random
import struct
from pathlib import Path
from typing import Any

import pytest

from podioc.autosave import cli, fileformat
from podioc.autosave.fileformat import CorruptFile, decode, encode
from podioc.autosave.settings import DEFAULT_DIR, ENV_DIR, AutosaveSettings, file_name_for
from podioc.autosave.store import AutosaveStore, StoreLocked
from podioc.errors import ConfigError

VALUES: dict[str, Any] = {
    "P:FLOAT": 42.5,
    "P:TINY": 5e-324,
    "P:NEG0": -0.0,
    "P:NAN": math.nan,
    "P:INF": math.inf,
    "P:NINF": -math.inf,
    "P:INT": -(2**31),
    "P:ENUM": "COOL",
    "P:BOOL": True,
    "P:STR": 'quote " backslash \\ newline \n tab \t ünïcødé ✓',
    "P:EMPTY": "",
    "P:ARR": [1.0, 2.5, -3.25e-7],
    "P:IARR": [1, -2, 255],
    "P:NOARR": [],
    "<END>": 1,
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# -- format -------------------------------------------------------------------
def test_round_trip_every_kind_bit_exact() -> None:
    data = encode(VALUES, {"prefix": "P:", "saved": "2024-01-02T03:04:05.000006Z"})
    saved = decode(data)
    assert list(saved.values) == list(VALUES)
    for name, value in VALUES.items():
        assert _same(saved.values[name], value), name
    assert saved.meta == {"prefix": "P:", "saved": "2024-01-02T03:04:05.000006Z"}
    assert saved.saved_at == pytest.approx(1704164645.000006)
    assert saved.version == fileformat.FORMAT_VERSION


def test_random_floats_round_trip_bit_exact() -> None:
    rng = random.Random(1234)
    values = {f"F{i}": struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
              for i in range(2000)}
    saved = decode(encode(values))
    assert all(_same(saved.values[k], v) for k, v in values.items())


def test_layout_is_one_pv_per_line_with_header_and_end() -> None:
    text = encode({"A:X": 1.5, "A:MODE": "HEAT"}, {"prefix": "A:"}).decode()
    lines = text.split("\n")
    assert lines[0] == "# podioc autosave 1"
    assert lines[1] == "# prefix: A:"
    assert lines[2:4] == ["A:X 1.5", 'A:MODE "HEAT"']
    assert lines[4].startswith("<END> 2 sha256=") and len(lines[4]) == len("<END> 2 sha256=") + 64
    assert lines[5] == "" and text.endswith("\n")


def test_every_truncation_is_detected() -> None:
    data = encode({"A:X": 1.5, "A:S": "text", "A:W": [1, 2, 3]}, {"saved": "now"})
    for length in range(len(data)):
        with pytest.raises(CorruptFile):
            decode(data[:length])


def test_every_bit_flip_is_detected() -> None:
    data = encode({"A:X": 1.5, "A:S": "text"}, {"saved": "now"})
    for pos in range(len(data)):
        for bit in (0x01, 0x20, 0x80):
            damaged = bytearray(data)
            damaged[pos] ^= bit
            with pytest.raises(CorruptFile):
                decode(bytes(damaged))


@pytest.mark.parametrize("suffix", [b"x", b"\n", b"A:Y 2\n",
                                    b"<END> 0 sha256=" + b"0" * 64 + b"\n"])
def test_bytes_after_the_end_line_are_detected(suffix: bytes) -> None:
    with pytest.raises(CorruptFile):
        decode(encode({"A:X": 1.0}) + suffix)


def test_reasons_are_specific() -> None:
    good = encode({"A:X": 1.0})
    with pytest.raises(CorruptFile, match="empty"):
        decode(b"")
    with pytest.raises(CorruptFile, match="truncated"):
        decode(good[:-1])
    with pytest.raises(CorruptFile, match="checksum"):
        decode(good.replace(b"A:X 1.0", b"A:X 2.0"))
    body = good.replace(b"# podioc autosave 1", b"# podioc autosave 9")
    with pytest.raises(CorruptFile, match="newer"):
        decode(_reseal_raw(body))
    with pytest.raises(CorruptFile, match="first line"):
        decode(_reseal_raw(b"hello\nA:X 1.0\n<END> 1 sha256=x\n"))
    with pytest.raises(CorruptFile, match="twice"):
        decode(_reseal_raw(b"# podioc autosave 1\nA:X 1.0\nA:X 2.0\n<END> 2 sha256=x\n"))
    with pytest.raises(CorruptFile, match="counts 3"):
        decode(_reseal_raw(b"# podioc autosave 1\nA:X 1.0\n<END> 3 sha256=x\n", count=3))
    with pytest.raises(CorruptFile, match="not JSON"):
        decode(_reseal_raw(b"# podioc autosave 1\nA:X 1.0.0\n<END> 1 sha256=x\n"))
    with pytest.raises(CorruptFile, match="PV-NAME"):
        decode(_reseal_raw(b"# podioc autosave 1\nA:X\n<END> 1 sha256=x\n"))


def _reseal_raw(data: bytes, count: int | None = None) -> bytes:
    """Seal arbitrary bytes with a correct checksum (to test the checks after it)."""
    import hashlib

    lines = data.rstrip(b"\n").split(b"\n")
    if lines[-1].startswith(b"<END>"):
        lines.pop()
    body = b"".join(line + b"\n" for line in lines)
    n = count if count is not None else sum(1 for ln in lines[1:] if not ln.startswith(b"#"))
    return body + f"<END> {n} sha256={hashlib.sha256(body).hexdigest()}\n".encode()


def test_comments_and_unknown_metadata_are_not_pvs() -> None:
    data = _reseal_raw(b"# podioc autosave 1\n# note: hand written\n# just a comment\n"
                       b"A:X 1\n")
    saved = decode(data)
    assert saved.values == {"A:X": 1}
    assert saved.meta == {"note": "hand written"}
    assert saved.saved_at is None


@pytest.mark.parametrize("name", ["", "has space", "#hash", "tab\tname"])
def test_unwritable_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        encode({name: 1})


def test_reseal_accepts_a_hand_edited_file(tmp_path: Path) -> None:
    edited = encode({"A:X": 1.0, "A:Y": 2}).replace(b"A:X 1.0", b"A:X 7.5")
    with pytest.raises(CorruptFile):
        decode(edited)
    assert decode(fileformat.reseal(edited)).values == {"A:X": 7.5, "A:Y": 2}
    path = tmp_path / "x.sav"
    path.write_bytes(edited)
    assert cli.main(["check", str(path)]) == 1
    assert cli.main(["reseal", str(path)]) == 0
    assert cli.main(["check", str(path)]) == 0


def test_iso_utc() -> None:
    assert fileformat.iso_utc(0.0) == "1970-01-01T00:00:00.000000Z"
    assert fileformat.iso_utc(1.9999999) == "1970-01-01T00:00:02.000000Z"


# -- store ---------------------------------------------------------------------
def _payload(i: int) -> bytes:
    return encode({"A:N": i})


def _n(path: Path) -> int:
    value: int = decode(path.read_bytes()).values["A:N"]
    return value


def test_write_keeps_generations(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=3)
    for i in range(1, 7):
        store.write(_payload(i))
    assert _n(store.path) == 6
    assert [_n(store.generation_path(g)) for g in (1, 2, 3)] == [5, 4, 3]
    assert not store.generation_path(4).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sav", "a.sav.1", "a.sav.2",
                                                          "a.sav.3"]


def test_generations_zero_keeps_only_current(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=0)
    store.write(_payload(1))
    store.write(_payload(2))
    assert [p.name for p in tmp_path.iterdir()] == ["a.sav"]


def test_generation_is_a_separate_file_not_a_live_link(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=2)
    store.write(_payload(1))
    store.write(_payload(2))
    assert os.stat(store.path).st_ino != os.stat(store.generation_path(1)).st_ino


def test_copy_fallback_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    def no_link(*_: Any) -> None:
        raise OSError(errno.EPERM, "links not supported")

    monkeypatch.setattr(os, "link", no_link)
    store = AutosaveStore(tmp_path, "a.sav", generations=2)
    for i in range(1, 4):
        store.write(_payload(i))
    assert [_n(store.generation_path(g)) for g in (0, 1, 2)] == [3, 2, 1]
    assert not list(tmp_path.glob(".*tmp"))


def test_failed_write_leaves_current_and_no_temp(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=2)
    store.write(_payload(1))
    store.write(_payload(2))

    def broken_fsync(_fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        store.write(_payload(3))
    monkeypatch.undo()
    assert _n(store.path) == 2 and _n(store.generation_path(1)) == 1
    assert not list(tmp_path.glob(".*tmp"))


def test_load_prefers_current_then_newest_good_generation(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=3)
    assert store.load().file is None and not store.load().found_any
    for i in range(1, 5):
        store.write(_payload(i))
    loaded = store.load()
    assert loaded.file is not None and loaded.file.values == {"A:N": 4}
    assert loaded.generation == 0 and loaded.rejected == []
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2])  # truncated
    loaded = store.load()
    assert loaded.generation == 1 and loaded.file is not None
    assert loaded.file.values == {"A:N": 3}
    assert [p for p, _ in loaded.rejected] == [store.path]
    damaged = bytearray(store.generation_path(1).read_bytes())
    damaged[-70] ^= 1  # inside the checksum
    store.generation_path(1).write_bytes(bytes(damaged))
    loaded = store.load()
    assert loaded.generation == 2 and loaded.file is not None
    assert loaded.file.values == {"A:N": 2}
    assert "checksum" in loaded.rejected[1][1]
    for g in (2, 3):
        store.generation_path(g).write_bytes(b"")
    loaded = store.load()
    assert loaded.file is None and loaded.found_any and len(loaded.rejected) == 4


def test_missing_current_falls_back(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=2)
    store.write(_payload(1))
    store.write(_payload(2))
    store.path.unlink()
    loaded = store.load()
    assert loaded.generation == 1 and loaded.rejected == []


def test_quarantine_and_stale_temps(tmp_path: Path) -> None:
    store = AutosaveStore(tmp_path, "a.sav", generations=2)
    store.write(_payload(1))
    (tmp_path / ".a.sav.123.tmp").write_bytes(b"partial")
    (tmp_path / ".a.sav.9.copy.tmp").write_bytes(b"partial")
    (tmp_path / ".other.sav.5.tmp").write_bytes(b"not ours")
    assert sorted(p.name for p in store.remove_stale_temps()) == [".a.sav.123.tmp",
                                                                  ".a.sav.9.copy.tmp"]
    assert (tmp_path / ".other.sav.5.tmp").exists()
    bad = store.quarantine_current()
    assert bad == tmp_path / "a.sav.bad" and not store.path.exists()
    assert store.quarantine_current() is None


def test_lock_excludes_a_second_user(tmp_path: Path) -> None:
    first = AutosaveStore(tmp_path, "a.sav")
    second = AutosaveStore(tmp_path, "a.sav")
    other = AutosaveStore(tmp_path, "b.sav")
    first.acquire()
    other.acquire()
    with pytest.raises(StoreLocked):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    other.release()


def test_store_refuses_paths_as_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AutosaveStore(tmp_path, "../x.sav")
    with pytest.raises(ValueError):
        AutosaveStore(tmp_path, ".hidden")


# -- settings --------------------------------------------------------------------
def test_settings_defaults_and_directory_sources(tmp_path: Path) -> None:
    s = AutosaveSettings.from_config({}, "i.yaml", tmp_path, {})
    assert (s.enabled, s.directory, s.explicit_directory) == (True, DEFAULT_DIR, False)
    assert (s.debounce, s.period, s.generations) == (0.5, 30.0, 3)
    s = AutosaveSettings.from_config({}, "i.yaml", tmp_path, {ENV_DIR: "/data/as"})
    assert (s.directory, s.explicit_directory, s.directory_source) == (
        Path("/data/as"), True, ENV_DIR)
    s = AutosaveSettings.from_config({"directory": "sav", "debounce": 0, "period": 2,
                                      "generations": 0, "pvs": ["a"], "exclude": ["B"],
                                      "file": "x.sav", "enabled": False},
                                     "i.yaml", tmp_path, {})
    assert s.directory == tmp_path / "sav" and s.directory_source == "i.yaml"
    assert (s.debounce, s.period, s.generations, s.pvs, s.exclude, s.file, s.enabled) == (
        0.0, 2.0, 0, ("a",), ("B",), "x.sav", False)
    # the environment wins over the config (the container's volume)
    s = AutosaveSettings.from_config({"directory": "sav"}, "i.yaml", tmp_path,
                                     {ENV_DIR: "/data/as"})
    assert (s.directory, s.directory_source) == (Path("/data/as"), ENV_DIR)


@pytest.mark.parametrize(("block", "field"), [
    ({"debounc": 1}, "autosave.debounc"),
    ({"debounce": -1}, "autosave.debounce"),
    ({"debounce": "1s"}, "autosave.debounce"),
    ({"period": 0}, "autosave.period"),
    ({"period": math.inf}, "autosave.period"),
    ({"generations": 1.5}, "autosave.generations"),
    ({"generations": True}, "autosave.generations"),
    ({"generations": 1000}, "autosave.generations"),
    ({"pvs": "setpoint"}, "autosave.pvs"),
    ({"exclude": [1]}, "autosave.exclude"),
    ({"file": "../x.sav"}, "autosave.file"),
    ({"file": ".x"}, "autosave.file"),
    ({"directory": ""}, "autosave.directory"),
    ({"enabled": "yes"}, "autosave.enabled"),
])
def test_settings_errors_name_file_and_field(tmp_path: Path, block: dict[str, Any],
                                             field: str) -> None:
    with pytest.raises(ConfigError) as info:
        AutosaveSettings.from_config(block, "inst.yaml", tmp_path, {})
    assert info.value.source == "inst.yaml" and info.value.field == field
    assert str(info.value).startswith(f"inst.yaml: {field}: ")


def test_file_names_are_safe_and_unique() -> None:
    prefixes = ["DEMO:", "DEMO_", "DEMO-", "DEMO", "BL01:TEMP:", "BL01_TEMP", "", ".",
                "a{b}", "a[b]", "X;Y", "<A>", "DEMO."]
    names = [file_name_for(p) for p in prefixes]
    assert len(set(names)) == len(names)
    assert file_name_for("DEMO") == "DEMO.sav"
    assert file_name_for("BL01:TEMP:").startswith("BL01_TEMP-")
    for name in names:
        assert "/" not in name and not name.startswith(".") and name.endswith(".sav")
        AutosaveSettings.from_config({"file": name}, "x", Path("."), {})
