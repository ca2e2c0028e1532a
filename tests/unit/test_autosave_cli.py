"""``python -m podioc.autosave check FILE... | reseal FILE`` (podioc.autosave.cli).

reseal replaces the file the way the store saves (temporary file, fsync,
rename, fsync of the directory): a failed write leaves the original intact.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from podioc.autosave import cli, fileformat
from podioc.autosave.fileformat import CorruptFile, decode, encode


def hand_edited(tmp_path: Path) -> tuple[Path, bytes]:
    edited = encode({"A:X": 1.0, "A:Y": 2}).replace(b"A:X 1.0", b"A:X 7.5")
    path = tmp_path / "x.sav"
    path.write_bytes(edited)
    return path, edited


def test_reseal_writes_a_valid_file_keeping_the_mode(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, edited = hand_edited(tmp_path)
    path.chmod(0o604)
    with pytest.raises(CorruptFile):
        decode(edited)
    assert cli.main(["check", str(path)]) == 1
    assert cli.main(["reseal", str(path)]) == 0
    assert decode(path.read_bytes()).values == {"A:X": 7.5, "A:Y": 2}
    assert cli.main(["check", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.sav"]  # no temporary left
    assert f"{path}: OK, 2 PVs" in capsys.readouterr().out


def test_reseal_is_atomic_and_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = hand_edited(tmp_path)
    calls: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert cli.main(["reseal", str(path)]) == 0
    assert calls == [("fsync", False), ("replace", "x.sav"), ("fsync", True)]


def test_reseal_keeps_the_original_when_the_write_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, edited = hand_edited(tmp_path)

    def no_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_replace)
    assert cli.main(["reseal", str(path)]) == 1
    monkeypatch.undo()
    assert path.read_bytes() == edited
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.sav"]  # temporary removed
    assert f"{path}: " in capsys.readouterr().err


def test_reseal_of_a_file_that_cannot_be_sealed_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.sav"
    path.write_bytes(b"not an autosave file\n")
    assert cli.main(["reseal", str(path)]) == 1
    assert path.read_bytes() == b"not an autosave file\n"
    assert "first line" in capsys.readouterr().err


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: python -m podioc.autosave" in capsys.readouterr().err


def test_the_format_module_has_no_cli_and_touches_no_files() -> None:
    assert not hasattr(fileformat, "main")
    source = Path(fileformat.__file__).read_text()
    for word in ("open(", "import os", "import sys", "pathlib"):
        assert word not in source


def test_module_entry_point(tmp_path: Path) -> None:
    path, _ = hand_edited(tmp_path)
    run = subprocess.run([sys.executable, "-m", "podioc.autosave", "reseal", str(path)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert decode(path.read_bytes()).values["A:X"] == 7.5
