"""``python -m podioc.autosave check FILE... | reseal FILE``: for operators
inspecting an autosave volume.

``check`` decodes each file and says whether it is usable. ``reseal``
recomputes the end line of a hand-edited file and replaces it with the
store's atomic write (:func:`~podioc.autosave.store.write_atomically`), keeping
its permissions; if anything fails the original is left as it was. Reseal only
while the IOC is stopped: a running IOC overwrites the file at its next save.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from .fileformat import decode, reseal
from .store import write_atomically

USAGE = "usage: python -m podioc.autosave check FILE... | reseal FILE"


def main(argv: list[str]) -> int:
    """Run ``check`` or ``reseal``; 0 when every file is fine, 1 if not, 2 on bad usage."""
    if len(argv) < 2 or argv[0] not in ("check", "reseal"):
        print(USAGE, file=sys.stderr)
        return 2
    status = 0
    for name in argv[1:]:
        path = Path(name)
        try:
            data = path.read_bytes()
            if argv[0] == "reseal":
                data = reseal(data)
                write_atomically(path, data, mode=stat.S_IMODE(os.stat(path).st_mode))
            saved = decode(data)
            print(f"{path}: OK, {len(saved.values)} PVs, saved {saved.meta.get('saved', '?')}")
        except (OSError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            status = 1
    return status
