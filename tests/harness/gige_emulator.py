"""aravis's GigE Vision camera emulator (``arv-fake-gv-camera-0.8``) as a test peer.

On the host it can only bind 127.0.0.1 (UDP 3956), so one emulator runs at a
time: :class:`LoopbackEmulator` holds a file lock for its lifetime. Discovery
by broadcast finds nothing on loopback; the host reaches it by unicast.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from .require import require_or_skip

EMULATOR = "arv-fake-gv-camera-0.8"
LOCK = Path("/tmp/podioc-gige-emulator-127.0.0.1.lock")


def emulator_path() -> str:
    """The emulator's path, or skip (fail under PODIOC_REQUIRE_GIGE=1)."""
    path = shutil.which(EMULATOR)
    if path is None:
        require_or_skip("gige", f"{EMULATOR} is missing (apt-get install aravis-tools)")
    return path


def wait_answering(address: str, timeout: float = 10.0) -> None:
    """Poll unicast discovery until the emulator at ``address`` answers."""
    from podioc.gige import discover

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if discover([address], timeout=0.2, attempts=1):
            return
    raise RuntimeError(f"the emulator at {address} did not answer discovery in {timeout} s")


class LoopbackEmulator:
    """``arv-fake-gv-camera-0.8 -i 127.0.0.1 [-r LOSS]``, stopped (by PID) on exit."""

    address = "127.0.0.1"

    def __init__(self, log_dir: Path, *, loss_per_thousand: int = 0,
                 serial: str = "GV01") -> None:
        self.argv = [emulator_path(), "-i", self.address, "-s", serial]
        if loss_per_thousand:
            self.argv += ["-r", str(loss_per_thousand)]
        self.log_path = log_dir / f"emulator-{serial}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[str] | None = None

    def __enter__(self) -> LoopbackEmulator:
        lock_file = self._lock_file = LOCK.open("w")
        deadline = time.monotonic() + 120
        while True:                       # another test process may hold the emulator
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{LOCK} held for 120 s by another test") from None
                time.sleep(0.2)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_answering(self.address)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{EMULATOR} exited ({self.proc.returncode}) but something "
                                   f"answers on {self.address}:3956: another emulator is "
                                   "running outside the tests; stop it")
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
