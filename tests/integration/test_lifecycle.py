"""Start-up and shutdown of a real ``podioc run``: signals, exit codes, ports, hooks."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import (
    IocProcess,
    MonitorQueue,
    PyepicsClient,
    poll_until,
    pva_client,
    tcp_listening,
    wait_ports_free,
)
from harness.readiness import listening_ports
from harness.testiocs import ALLKINDS, write_allkinds_yaml

IocFactory = Callable[..., IocProcess]

#: A clean shutdown must not take longer than this (the IOC does no slow work).
PROMPT = 5.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_promptly_and_frees_ports(ioc_factory: IocFactory,
                                                    signum: int) -> None:
    ioc = ioc_factory(ALLKINDS)
    assert tcp_listening(ioc.ca_port) and tcp_listening(ioc.pva_port)
    ports = [ioc.ca_port, ioc.pva_port, ioc.pva_bport]
    code = ioc.stop(signum, timeout=15.0)
    assert code == 0, ioc.log_text()
    assert ioc.stop_seconds is not None and ioc.stop_seconds < PROMPT
    assert wait_ports_free(ports, timeout=5.0) == []
    log = ioc.log_text()
    assert f"{signal.Signals(signum).name} received" in log
    assert "Traceback" not in log


def test_shutdown_with_connected_clients_and_monitors(ioc_factory: IocFactory) -> None:
    """Live CA and PVA monitors don't hold the IOC up; clients see the disconnect."""
    ioc = ioc_factory(ALLKINDS)
    with PyepicsClient(ioc) as pyepics, pva_client(ioc) as pva:
        pyepics.subscribe(ioc.pv("TICKS"))
        queue = MonitorQueue()
        sub = pva.monitor(ioc.pv("TICKS"), queue, notify_disconnect=True)
        try:
            queue.wait_count(2)
            assert ioc.stop(signal.SIGTERM) == 0, ioc.log_text()
            assert ioc.stop_seconds is not None and ioc.stop_seconds < PROMPT
            queue.wait_for(lambda item: isinstance(item, Exception))  # Disconnected
        finally:
            sub.close()
    assert "Traceback" not in ioc.log_text()


def test_startup_and_shutdown_hooks(ioc_factory: IocFactory, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    config = write_allkinds_yaml(tmp_path, marker=marker)
    ioc = ioc_factory(config)
    assert marker.read_text() == f"started {ioc.prefix}\n"  # before "serving"
    with pva_client(ioc) as pva:
        pva.put(ioc.pv("DRIVE"), 1.0, timeout=10)
        pva.put(ioc.pv("DRIVE"), 2.0, timeout=10)
    assert ioc.stop() == 0
    assert marker.read_text() == f"started {ioc.prefix}\nstopped 2\n"


def test_prefix_from_config_and_override(ioc_factory: IocFactory, tmp_path: Path) -> None:
    """Without --prefix the config's prefix is served; --prefix replaces it."""
    config = write_allkinds_yaml(tmp_path, prefix=f"CFG{time.monotonic_ns()}:")
    own = ioc_factory(config, use_prefix=False)
    served = own.wait_for_log(r"prefix '([^']*)'").group(1)
    assert served.startswith("CFG")
    with pva_client(own) as pva:
        assert float(pva.get(f"{served}FLOAT", timeout=10)) == 1.5


def test_second_ioc_on_taken_ports_still_serves(ioc_factory: IocFactory) -> None:
    """Two IOCs asked for the same CA port: the second moves (and says so) but serves."""
    first = ioc_factory(ALLKINDS)
    second = IocProcess(ALLKINDS, log_dir=Path(first.log_path).parent, name="second")
    second.ca_port, second.pva_port = first.ca_port, first.pva_port
    second.pva_bport, second.repeater_port = first.pva_bport, first.repeater_port
    second._launch()
    try:
        moved = second._wait_ready()  # listening, but not on the ports asked for
        assert moved, "the second IOC claims the first one's ports"
        served = listening_ports(second.pid)
        assert first.ca_port not in served and len(served) >= 2
        assert "is taken" in second.log_text()
    finally:
        assert second.stop() == 0


def test_running_ioc_reports_ready_line(ioc_factory: IocFactory) -> None:
    ioc = ioc_factory(ALLKINDS)
    assert ioc.pv_count >= 20
    with PyepicsClient(ioc) as pyepics:
        got: dict[str, Any] = pyepics.get(ioc.pv("TICKS"))
        first = got["value"]
        poll_until(lambda: pyepics.get(ioc.pv("TICKS"))["value"] > first, timeout=10,
                   message="the scan runs")
