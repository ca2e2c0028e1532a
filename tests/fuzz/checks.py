"""What the fuzz tests and the fuzz script check between batches.

- :class:`Health`: a normal caproto client and a normal p4p client stay
  connected to the IOC; :meth:`Health.check` puts a new value over CA, sees it
  in CA and PVA monitors, gets it over both, then puts over PVA and gets over CA.
- :func:`rss_mb`: the IOC process's resident memory.
- :func:`record_pva_opening`: a real p4p client's bytes (handshake, channel
  creation, get, put, monitor), split into messages, as seeds for PVA fuzzing.
- :func:`target_config`: an instance config for ``target_ioc.Target``.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import time
from pathlib import Path
from typing import Any

import psutil
from p4p.client.thread import Context as PVAContext

from harness import IocProcess, caproto_client

from .corpus import split_pva
from .load_worker import kick
from .relay import PVARelay

TARGET = Path(__file__).resolve().with_name("target_ioc.py")
NAMES = ("RW", "RO", "TICKS", "BIG", "LABEL", "WAVE")
#: Access rules for fuzzing, so the access checks are fuzzed too: RO and HIDDEN get
#: no access at all from 127.0.0.1, LABEL and WAVE are read-only, the rest writable.
FUZZ_ACCESS = """access:
  rules: |
    HAG(elsewhere) { 127.0.0.9 }
    ASG(DEFAULT) { RULE(1, WRITE) }
    ASG(READONLY) { RULE(1, READ) }
    ASG(HIDDEN) { RULE(1, WRITE) { HAG(elsewhere) } }
  groups:
    READONLY: [LABEL, WAVE]
    HIDDEN: [RO, HIDDEN]
"""


def target_config(directory: Path, *, extra: int = 0, big: int = 4096,
                  big_period: float = 0.0, tick: float = 0.1, access: str = "") -> Path:
    """Write an instance config for the Target IOC; returns its path."""
    path = directory / "target.yaml"
    path.write_text(f"ioc: '{TARGET}:Target'\nprefix: 'FZ:'\n"
                    f"args: {{extra: {extra}, big: {big}, big_period: {big_period}, "
                    f"tick: {tick}}}\n{access}")
    return path


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20


class HealthError(AssertionError):
    """A normal client could not get, put or monitor."""


class Health:
    """Persistent normal clients (CA and PVA) that check the IOC still serves them."""

    def __init__(self, ioc: IocProcess, timeout: float = 10.0) -> None:
        self.ioc = ioc
        self.timeout = timeout
        self._stack = contextlib.ExitStack()
        self.ca = self._stack.enter_context(caproto_client(ioc))
        self.pva = PVAContext("pva", conf=ioc.pva_conf(), useenv=False)
        self._stack.callback(self.pva.close)
        (self.ca_rw,) = self.ca.get_pvs(ioc.pv("RW"), timeout=timeout)
        self.ca_rw.wait_for_connection(timeout=timeout)
        self.ca_seen: queue.Queue[float] = queue.Queue()
        self.pva_seen: queue.Queue[float] = queue.Queue()
        self.ca_sub = self.ca_rw.subscribe(data_type="time")
        self.ca_sub.add_callback(self._on_ca)  # caproto holds callbacks weakly
        self.pva_sub = self.pva.monitor(ioc.pv("RW"), self._on_pva)
        kick(self.pva_sub)
        self._stack.callback(self.pva_sub.close)
        self._values = itertools.count(1)
        self.checks = 0

    def _on_ca(self, sub: Any, response: Any) -> None:
        self.ca_seen.put(float(response.data[0]))

    def _on_pva(self, value: Any) -> None:
        with contextlib.suppress(TypeError, ValueError):
            self.pva_seen.put(float(value))

    def _expect(self, seen: queue.Queue[Any], value: float, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                if seen.get(timeout=remaining) == value:
                    return
            except queue.Empty:
                break
        raise HealthError(f"{what} monitor never showed {value}")

    def check(self) -> None:
        """Put, monitor and get over both protocols; raises HealthError."""
        if not self.ioc.alive():
            raise HealthError(f"the IOC exited ({self.ioc.proc and self.ioc.proc.poll()})")
        value = float(next(self._values))
        try:
            reply = self.ca_rw.write([value], wait=True, timeout=self.timeout)
            if not reply.status.success:
                raise HealthError(f"CA put refused: {reply.status}")
            self._expect(self.ca_seen, value, "CA")
            self._expect(self.pva_seen, value, "PVA")
            if float(self.ca_rw.read(timeout=self.timeout).data[0]) != value:
                raise HealthError("CA get does not return the value just put")
            if float(self.pva.get(self.ioc.pv("RW"), timeout=self.timeout)) != value:
                raise HealthError("PVA get does not return the value just put")
            value += 0.5
            self.pva.put(self.ioc.pv("RW"), value, timeout=self.timeout)
            if float(self.ca_rw.read(timeout=self.timeout).data[0]) != value:
                raise HealthError("CA get does not return the value put over PVA")
        except HealthError:
            raise
        except Exception as exc:
            raise HealthError(f"{type(exc).__name__}: {exc}") from exc
        self.checks += 1

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Health:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_pva_opening(ioc: IocProcess) -> list[bytes]:
    """The messages a real p4p client sends: validation, create, get, put, monitor."""
    with PVARelay(ioc.pva_port, "127.0.0.1") as relay:
        ctx = PVAContext("pva", conf=relay.conf(), useenv=False)
        try:
            ctx.get(ioc.pv("RW"), timeout=10)
            ctx.put(ioc.pv("RW"), 0.0, timeout=10)
            ctx.get(ioc.pv("WAVE"), timeout=10)
            seen: queue.Queue[Any] = queue.Queue()
            sub = ctx.monitor(ioc.pv("TICKS"), seen.put)
            seen.get(timeout=10)
            sub.close()
        finally:
            ctx.close()
        return split_pva(bytes(relay.recorded))
