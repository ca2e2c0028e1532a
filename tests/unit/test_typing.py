"""The typed PV API, checked by mypy itself: user code passes ``--strict``, typos don't.

mypy runs (through ``mypy.api``, with the project's configuration) on
``typing_cases/user_ioc.py``, a user-style IOC using every part of the API,
on ``typing_cases/typos_ioc.py``, whose marked lines misspell ``.value`` and
assign a ``str`` to a float PV, and on the example IOCs under ``iocs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "typing_cases"


def marked_line(path: Path, marker: str) -> int:
    """The 1-based number of the line of ``path`` holding ``marker``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line)


def test_mypy_strict_passes_user_code_and_reports_the_typos(tmp_path: Path) -> None:
    typos = CASES / "typos_ioc.py"
    targets = [CASES / "user_ioc.py", typos, *sorted((REPO / "iocs").glob("*/*.py"))]
    stdout, stderr, status = api.run([
        "--config-file", str(REPO / "pyproject.toml"), "--strict", "--no-incremental",
        "--cache-dir", str(tmp_path / "cache"), *map(str, targets)])
    assert stderr == ""
    errors = re.findall(r"^(.+?):(\d+): error: (.*)$", stdout, re.MULTILINE)
    assert status == 1, stdout
    assert [(Path(path).resolve(), int(line), text) for path, line, text in errors] == [
        (typos, marked_line(typos, "ERROR-attr"),
         '"PV[float]" has no attribute "valeu"; maybe "value"?  [attr-defined]'),
        (typos, marked_line(typos, "ERROR-assignment"),
         'Incompatible types in assignment (expression has type "str", variable has type '
         '"float")  [assignment]'),
    ], stdout
