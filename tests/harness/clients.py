"""Real EPICS clients for tests: pyepics (in a worker process), caproto, p4p.

- pyepics/libca read the environment once per process, so :class:`PyepicsClient`
  runs ``pyepics_worker.py`` in a subprocess with the IOC's client environment.
- caproto's threading client reads ``os.environ`` when its ``SharedBroadcaster``
  is created *and on every search it sends* (``ca.get_client_address_list()``),
  so :func:`caproto_client` patches ``os.environ`` for as long as the context
  lives and gives the context its own broadcaster. Don't use two caproto
  clients for different IOCs at the same time.
- p4p takes its configuration explicitly: ``Context('pva', conf=..., useenv=False)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .ioc_process import IocProcess, base_env

WORKER = Path(__file__).with_name("pyepics_worker.py")

EnvSource = IocProcess | Mapping[str, str]


def _client_env(source: EnvSource) -> dict[str, str]:
    return source.client_env() if isinstance(source, IocProcess) else dict(source)


class WorkerError(AssertionError):
    """The pyepics worker answered ``ok: false`` or not at all."""


class PyepicsClient:
    """A pyepics client process; each method is one request/response round trip.

    Methods return the worker's reply dict; a failed operation raises
    :class:`WorkerError` unless ``check=False`` is given.
    """

    def __init__(self, source: EnvSource, timeout: float = 30.0) -> None:
        self.env = _client_env(source)
        self.timeout = timeout
        fd, name = tempfile.mkstemp(prefix="pyepics-", suffix=".log")
        os.close(fd)
        self.stderr_path = Path(name)
        env = base_env()
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.stderr_path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
            start_new_session=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True, name="pyepics-reader")
        self._reader.start()
        self._reply(self.timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):  # closed under us: the end
            for line in self.proc.stdout:
                self._lines.put(line)
        self._lines.put(None)

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise WorkerError(f"pyepics worker gave no answer in {timeout} s; "
                              f"libca output: {self.libca_output()!r}") from None
        if line is None:
            raise WorkerError(f"pyepics worker exited ({self.proc.poll()}); "
                              f"output: {self.libca_output()!r}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, *, check: bool = True, **params: Any) -> dict[str, Any]:
        """Run one operation (see ``pyepics_worker.py``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **params}) + "\n")
        self.proc.stdin.flush()
        wait = float(params.get("timeout", 5.0)) + self.timeout
        reply = self._reply(wait)
        if check and not reply["ok"]:
            raise WorkerError(f"pyepics {op} {params}: {reply['error']}; "
                              f"libca output: {self.libca_output()!r}")
        return reply

    def get(self, pv: str, **kw: Any) -> dict[str, Any]:
        """``epics.PV(pv).get(use_monitor=False)`` with alarm, timestamp and optional ctrl."""
        return self.call("get", pv=pv, **kw)

    def info(self, pv: str, **kw: Any) -> dict[str, Any]:
        """Connection, access rights, type and count."""
        return self.call("info", pv=pv, **kw)

    def put(self, pv: str, value: Any, *, wait: bool = True, **kw: Any) -> dict[str, Any]:
        """``epics.PV(pv).put(value, wait=wait)``."""
        return self.call("put", pv=pv, value=value, wait=wait, **kw)

    def subscribe(self, pv: str, id: str | None = None, **kw: Any) -> str:
        """Start a monitor; returns its id once the first update has arrived."""
        sub_id = id or f"sub{time.monotonic_ns()}"
        self.call("subscribe", pv=pv, id=sub_id, **kw)
        return sub_id

    def updates(self, sub_id: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """All updates of a monitor once there are at least ``count`` (first included)."""
        updates: list[dict[str, Any]] = self.call("updates", id=sub_id, count=count,
                                                  timeout=timeout)["updates"]
        return updates

    def wait_stderr(self, contains: str, timeout: float = 5.0) -> str:
        """Wait until libca printed ``contains``; all libca output so far."""
        text: str = self.call("wait_stderr", contains=contains, timeout=timeout)["stderr"]
        return text

    def libca_output(self) -> str:
        """Everything libca (and pyepics) printed so far."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Ask the worker to exit; kill it (by PID) if it doesn't."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=10)  # it ends at EOF, once the worker has exited
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.stderr_path.unlink(missing_ok=True)

    def __enter__(self) -> PyepicsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str], drop_prefix: str = "EPICS_") -> Iterator[None]:
    """Set ``env`` in ``os.environ`` (dropping other ``drop_prefix`` vars); restore after."""
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(drop_prefix)]:
        del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def caproto_client(source: EnvSource) -> Iterator[Any]:
    """A caproto threading ``Context`` that finds the IOC (env patched while it lives)."""
    from caproto.threading.client import Context, SharedBroadcaster

    with patched_environ(_client_env(source)):
        ctx = Context(SharedBroadcaster())
        try:
            yield ctx
        finally:
            ctx.disconnect()


def ca_pv(ctx: Any, name: str, timeout: float = 10.0) -> Any:
    """A connected caproto threading-client PV."""
    (pv,) = ctx.get_pvs(name, timeout=timeout)
    pv.wait_for_connection(timeout=timeout)
    return pv


@contextlib.contextmanager
def pva_client(source: IocProcess | Mapping[str, str], nt: bool = True) -> Iterator[Any]:
    """A p4p thread ``Context`` configured for the IOC only (``nt=False``: raw Values)."""
    from p4p.client.thread import Context

    conf = source.pva_conf() if isinstance(source, IocProcess) else dict(source)
    ctx = Context("pva", conf=conf, useenv=False, **({} if nt else {"nt": False}))
    try:
        yield ctx
    finally:
        ctx.close()


def time_until(condition: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.02) -> float:
    """Poll ``condition()`` every ``interval`` s; the seconds until it held.

    A client timeout or a remote (PVA) error counts as "not yet"; any other
    exception fails at once. Fails after ``timeout`` s, naming ``what``.
    """
    from p4p.client.thread import RemoteError

    start = time.monotonic()
    last: Any = None
    while time.monotonic() - start < timeout:
        try:
            if condition():
                return time.monotonic() - start
        except (RemoteError, TimeoutError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout} s (last error: {last!r})")


def poll_until(fn: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Call ``fn`` until it returns something truthy; fail after ``timeout`` s.

    Exceptions raised by ``fn`` count as "not yet"; the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = fn()
        except Exception as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout} s (last: {last!r})")
        time.sleep(interval)


class MonitorQueue:
    """Collects updates from a p4p or caproto monitor callback, thread-safely."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        """Callback: keeps the last argument (p4p: the Value; caproto: the response)."""
        with self._cond:
            self.items.append(args[-1])
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """The first collected item matching ``predicate`` (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for item in self.items[seen:]:
                    if predicate(item):
                        return item
                seen = len(self.items)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching update within {timeout} s; "
                                         f"got {self.items!r}")
                self._cond.wait(left)

    def wait_count(self, count: int, timeout: float = 10.0) -> list[Any]:
        """All items once there are at least ``count``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.items)} of {count} updates within "
                                         f"{timeout} s: {self.items!r}")
                self._cond.wait(left)
            return list(self.items)
