"""The start counter (the START_CNT health PV), kept beside the autosave file.

``NAME.starts`` (for the save file ``NAME.sav``) holds the number of starts
so far as a decimal line; each start reads it, adds one and replaces it
atomically (a temporary file left by a process killed meanwhile is removed
at the next start). A missing file counts from 0; an unreadable one is
reported and counting starts again.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from .store import write_atomically

log = logging.getLogger(__name__)


def counter_path(directory: Path, save_file: str) -> Path:
    """``directory/NAME.starts`` for the save file ``NAME.sav``."""
    stem = save_file[:-4] if save_file.endswith(".sav") else save_file
    return directory / f"{stem}.starts"


def count_start(path: Path) -> int:
    """Add this start to the counter at ``path`` and return the new count.
    Raises ``OSError`` when the file cannot be written."""
    try:
        previous = int(path.read_text().strip())
    except FileNotFoundError:
        previous = 0
    except (OSError, ValueError) as exc:
        log.warning("start counter %s unreadable (%s): counting again from 1", path, exc)
        previous = 0
    count = max(previous, 0) + 1
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # see write_atomically
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    write_atomically(path, f"{count}\n".encode())
    return count
