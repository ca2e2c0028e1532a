"""The autosave files of one instance on disk: atomic, durable writes and generations.

Files in the directory, for the base name ``NAME.sav``:

- ``NAME.sav``: the current file. It always exists once the first save is
  done and is always complete: it is only ever replaced by ``rename(2)``.
- ``NAME.sav.1`` .. ``NAME.sav.N``: the N previous generations, newest first.
- ``.NAME.sav.<pid>.tmp``: a save in progress (left behind only by a killed
  process; removed at the next start).
- ``NAME.sav.bad``: the last current file found corrupt at start, kept for
  inspection.
- ``.NAME.sav.lock``: held (``flock``) while an IOC uses these files, so a
  second IOC with the same prefix cannot interleave its saves.

A save: write the temporary file, ``fsync`` it; shift generations up
(``.N-1`` -> ``.N`` ... ``.1`` -> ``.2``); hard-link the current file as
``.1`` (a copy where links are unsupported); rename the temporary file over
the current one; ``fsync`` the directory. A crash at any point leaves a
complete current file (old or new) and readable generations. Every file that
replaces another is written by :func:`write_atomically`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..limits.fds import FdReserve
from .fileformat import CorruptFile, SaveFile, decode


def write_atomically(path: Path, data: bytes, *, mode: int | None = None,
                     before_replace: Callable[[], None] | None = None) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file.

    Writes ``.NAME.<pid>.tmp`` beside it and ``fsync``s it, calls
    ``before_replace``, renames the temporary file over ``path`` and ``fsync``s
    the directory. The new file gets permissions ``mode`` exactly, or 0o640
    less the umask. Raises ``OSError`` with ``path`` untouched and the
    temporary file removed.
    """
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        _write_synced(tmp, data, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes, mode: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


class StoreLocked(OSError):
    """Another process holds the lock of these autosave files."""


@dataclass(frozen=True)
class Loaded:
    """The result of :meth:`AutosaveStore.load`."""

    file: SaveFile | None
    path: Path | None = None
    generation: int = 0
    #: (path, reason) of every file that existed but could not be used.
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def found_any(self) -> bool:
        """True when at least one file (good or bad) existed."""
        return self.file is not None or bool(self.rejected)


class AutosaveStore:
    """The files ``directory/basename`` and its generations. Thread-safe writes."""

    def __init__(self, directory: Path, basename: str, generations: int = 3) -> None:
        if "/" in basename or basename.startswith("."):
            raise ValueError(f"autosave file name {basename!r} must be a plain file name")
        self.directory = directory
        self.basename = basename
        self.generations = generations
        self.path = directory / basename
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        #: descriptors held for writes, so a save never fails when clients took the rest
        self._reserve = FdReserve(4)

    def generation_path(self, index: int) -> Path:
        """The current file for 0, else generation ``index`` (1 = newest previous)."""
        return self.path if index == 0 else self.directory / f"{self.basename}.{index}"

    # -- ownership -----------------------------------------------------------
    def acquire(self) -> None:
        """Take the lock file; raise :class:`StoreLocked` if another process holds it,
        ``OSError`` if the directory is not usable."""
        path = self.directory / f".{self.basename}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreLocked(exc.errno, f"{path} is locked by another process") from None
            raise
        self._lock_fd = fd

    def release(self) -> None:
        """Release the lock file (the kernel does it too when the process dies)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._reserve.release()

    def remove_stale_temps(self) -> list[Path]:
        """Delete temporary files left by killed processes; return what was removed."""
        removed = []
        for tmp in self.directory.glob(f".{self.basename}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
        return removed

    # -- reading -------------------------------------------------------------
    def load(self) -> Loaded:
        """The newest valid file: the current one, else generations .1, .2, ..."""
        rejected: list[tuple[Path, str]] = []
        for index in range(self.generations + 1):
            path = self.generation_path(index)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                rejected.append((path, f"cannot be read: {exc.strerror}"))
                continue
            try:
                return Loaded(decode(data), path, index, rejected)
            except CorruptFile as exc:
                rejected.append((path, str(exc)))
        return Loaded(None, None, 0, rejected)

    def quarantine_current(self) -> Path | None:
        """Move a corrupt current file aside to ``NAME.sav.bad`` so that it is not
        rotated into the generations; returns the new path."""
        bad = self.directory / f"{self.basename}.bad"
        try:
            os.replace(self.path, bad)
        except FileNotFoundError:
            return None
        fsync_dir(self.directory)
        return bad

    # -- writing -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Atomically and durably replace the current file with ``data``, keeping
        the previous ``generations`` files. Raises ``OSError`` (nothing replaced).
        If descriptors have run out, the write is retried with the reserve released."""
        with self._write_lock:
            self._reserve.run(lambda: write_atomically(self.path, data,
                                                       before_replace=self._rotate))

    def _rotate(self) -> None:
        if self.generations < 1:
            return
        for index in range(self.generations - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.generation_path(index), self.generation_path(index + 1))
        newest = self.generation_path(1)
        with contextlib.suppress(FileNotFoundError):
            newest.unlink()
        try:
            os.link(self.path, newest)
        except FileNotFoundError:
            return
        except OSError:  # no hard links here: copy, durably, then rename
            copy = self.directory / f".{self.basename}.{os.getpid()}.copy.tmp"
            try:
                shutil.copyfile(self.path, copy)
                fd = os.open(copy, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(copy, newest)
            except FileNotFoundError:
                return
