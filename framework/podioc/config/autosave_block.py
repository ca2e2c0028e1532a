"""The instance config's ``autosave:`` block, declared once (see :mod:`podioc.autosave.settings`
for what the settings do and where the directory comes from)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .hints import Hint

#: A plain file name: no directory part, not hidden.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
MAX_GENERATIONS = 100
DEFAULT_DEBOUNCE = 0.5
DEFAULT_PERIOD = 30.0
DEFAULT_GENERATIONS = 3

_NAMES_FIX = "e.g. {key}: [setpoint, MODE] (attribute names or PV suffixes)"


def _seconds(key: str, minimum: float, default: float) -> Hint:
    return Hint(f"{{value}} is not a number of seconds >= {minimum:g}",
                f"e.g. {key}: {default:g}")


PvNames = Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Hint(
    "{value} is not a list of PV names", _NAMES_FIX.format(key="pvs"))]
ExcludeNames = Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Hint(
    "{value} is not a list of PV names", _NAMES_FIX.format(key="exclude"))]


class AutosaveBlock(BaseModel):
    """Autosave: PVs declared ``autosave=True`` (plus ``pvs``, minus ``exclude``) are saved
    when they change, periodically and at shutdown, and restored before serving."""

    model_config = ConfigDict(extra="forbid", strict=True, title="autosave")

    enabled: Annotated[bool, Hint("{value} is not true or false",
                                  "enabled: true or enabled: false")] = Field(
        default=True, description="false turns autosave off for this instance")
    directory: Annotated[str, StringConstraints(pattern=r"\S"), Hint(
        "{value} is not a directory path",
        "e.g. directory: ./autosave (relative to this file)")] | None = Field(
        default=None, description="directory of the save files, relative to this file; "
        "$PODIOC_AUTOSAVE_DIR wins (default /var/lib/podioc/autosave if it exists)")
    file: Annotated[str, StringConstraints(pattern=FILE_NAME_RE.pattern), Hint(
        "{value} is not a plain file name",
        "use letters, digits, '_', '-' and '.', e.g. file: bl01-temp.sav")] | None = Field(
        default=None,
        description="save file name (default: derived from the prefix, unique per prefix)")
    debounce: Annotated[float, Field(ge=0, allow_inf_nan=False),
                        _seconds("debounce", 0, DEFAULT_DEBOUNCE)] = Field(
        default=DEFAULT_DEBOUNCE,
        description="seconds: a change is on disk at most this long later")
    period: Annotated[float, Field(ge=0.01, allow_inf_nan=False),
                      _seconds("period", 0.01, DEFAULT_PERIOD)] = Field(
        default=DEFAULT_PERIOD, description="seconds between periodic saves (they retry "
        "failed saves and recreate a deleted file)")
    generations: Annotated[int, Field(ge=0, le=MAX_GENERATIONS), Hint(
        f"{{value}} is not a whole number 0..{MAX_GENERATIONS}", "e.g. generations: 3")] = Field(
        default=DEFAULT_GENERATIONS, description="previous files kept: NAME.sav.1 .. NAME.sav.N")
    pvs: PvNames | None = Field(
        default=None,
        description="also save these PVs (attribute names, PV suffixes or full names)")
    exclude: ExcludeNames | None = Field(
        default=None, description="never save these PVs, even if declared autosave=True")
