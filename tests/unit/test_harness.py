"""The test harness itself: ports, strict skips, env handling, polling helpers."""

from __future__ import annotations

import os
import socket
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from harness import (
    IocProcess,
    MonitorQueue,
    free_ports,
    patched_environ,
    poll_until,
    port_is_free,
    require_or_skip,
    unique_prefix,
)
from harness.require import forbid_skip


def test_free_ports_are_distinct_and_free_for_tcp_and_udp() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", port))
    assert not set(ports) & set(free_ports(6))  # never handed out twice


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def test_unique_prefixes() -> None:
    prefixes = {unique_prefix() for _ in range(100)}
    assert len(prefixes) == 100 and all(p.endswith(":") for p in prefixes)


def test_ioc_process_environment_is_loopback_only() -> None:
    ioc = IocProcess("x.yaml", prefix="P:")
    ioc.ca_port, ioc.pva_port, ioc.pva_bport, ioc.repeater_port = 1001, 1002, 1003, 1004
    server = ioc.server_env()
    assert server["EPICS_CAS_INTF_ADDR_LIST"] == server["EPICS_PVAS_INTF_ADDR_LIST"] == (
        "127.0.0.1")
    assert server["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] == "NO"
    assert ioc.client_env()["EPICS_CA_ADDR_LIST"] == "127.0.0.1"
    assert ioc.client_env()["EPICS_CA_AUTO_ADDR_LIST"] == "NO"
    assert ioc.pva_conf()["EPICS_PVA_BROADCAST_PORT"] == "1003"
    assert ioc.command()[-4:] == ["run", "x.yaml", "--prefix", "P:"]


def test_patched_environ_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPICS_CA_ADDR_LIST", "10.0.0.1")
    monkeypatch.setenv("EPICS_OTHER", "x")
    with patched_environ({"EPICS_CA_SERVER_PORT": "1"}):
        assert os.environ["EPICS_CA_SERVER_PORT"] == "1"
        assert "EPICS_CA_ADDR_LIST" not in os.environ and "EPICS_OTHER" not in os.environ
    assert os.environ["EPICS_CA_ADDR_LIST"] == "10.0.0.1"
    assert "EPICS_CA_SERVER_PORT" not in os.environ


def test_poll_until() -> None:
    calls = iter([0, 0, 5])
    assert poll_until(lambda: next(calls), timeout=5, interval=0.001) == 5
    with pytest.raises(AssertionError, match=r"never not met within 0\.05 s"):
        poll_until(lambda: False, timeout=0.05, message="never")


def test_monitor_queue_keeps_the_last_argument() -> None:
    queue = MonitorQueue()
    threading.Timer(0.05, queue, args=("sub", 2)).start()
    queue(1)
    assert queue.wait_for(lambda item: item == 2, timeout=5) == 2
    assert queue.wait_count(2) == [1, 2]
    with pytest.raises(AssertionError, match="3 of 4"):
        queue("x")
        queue.wait_count(4, timeout=0.05)


def test_require_or_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIOC_REQUIRE_DOCKER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no engine"):
        require_or_skip("docker", "no engine")
    monkeypatch.setenv("PODIOC_REQUIRE_DOCKER", "1")
    with pytest.raises(pytest.fail.Exception, match="PODIOC_REQUIRE_DOCKER=1"):
        require_or_skip("docker", "no engine")


def _item(*markers: str) -> Any:
    return SimpleNamespace(get_closest_marker=lambda name: name if name in markers else None)


def _skipped() -> Any:
    return SimpleNamespace(skipped=True, outcome="skipped", longrepr=("f.py", 1, "Skipped: x"))


def test_forbid_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIOC_REQUIRE_NETNS", "1")
    monkeypatch.delenv("PODIOC_REQUIRE_DOCKER", raising=False)
    report = _skipped()
    forbid_skip(_item("netns"), report)
    assert report.outcome == "failed" and "PODIOC_REQUIRE_NETNS=1" in report.longrepr
    for item in (_item("docker"), _item()):  # not required / not marked: stays skipped
        report = _skipped()
        forbid_skip(item, report)
        assert report.outcome == "skipped"
