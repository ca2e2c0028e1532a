"""Units of the hostile-network bounds: settings, descriptor plan, reserve, log
limiter, pvxs report parsing, the kernel socket table, dead-peer options."""

from __future__ import annotations

import errno
import socket

import pytest

from podioc.errors import ConfigError
from podioc.limits import deadpeer, fds
from podioc.limits.budget import ChannelBudget
from podioc.limits.resources import Limits
from podioc.limits.stderr import LineLimiter
from podioc.protocols.pva.connections import Report
from podioc.util import sockdiag


def test_limits_read_from_the_environment() -> None:
    limits = Limits.from_env({"PODIOC_DEAD_PEER_TIMEOUT": "6.5", "PODIOC_MAX_CHANNELS": "900",
                              "PODIOC_PVA_MAX_BUFFER_BYTES": "1048576",
                              "PODIOC_FD_RESERVE": "32"}, ca_conn_tmo=2)
    assert (limits.dead_peer_timeout, limits.max_channels, limits.fd_reserve) == (6.5, 900, 32)
    assert limits.pva_max_buffer() == 1 << 20 and limits.ca_conn_tmo == 2
    assert Limits().pva_max_buffer() == 16 << 20
    assert Limits().channel_budget(100_000) == 400_000
    for name, bad in (("PODIOC_DEAD_PEER_TIMEOUT", "1"), ("PODIOC_MAX_CHANNELS", "1.5"),
                      ("PODIOC_FD_RESERVE", "lots")):
        with pytest.raises(ConfigError, match=name):
            Limits.from_env({name: bad})


def test_descriptor_plan_fits_the_caps_under_the_limit() -> None:
    plan = fds.plan(1000, 64, 2, soft=1024, hard=1024, in_use=20)
    assert plan.per_protocol == 470
    assert "lowered from PODIOC_MAX_CLIENTS=1000" in plan.describe(1000, 2)
    assert fds.plan(1000, 64, 2, soft=65536, hard=65536, in_use=20).per_protocol == 1000


def test_reserve_retries_once_with_its_descriptors_released() -> None:
    reserve = fds.FdReserve(2)
    calls: list[int] = []

    def save() -> str:
        calls.append(len(reserve._held))
        if len(calls) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return "saved"

    assert reserve.run(save) == "saved"
    assert calls == [2, 0] and len(reserve._held) == 2
    reserve.release()


def test_line_limiter_counts_what_it_drops() -> None:
    limiter = LineLimiter(burst=2, period=10)
    lines = [limiter.admit(f"Error from accept() call fd {n}", now=0.0) for n in range(5)]
    assert lines[:2] == ["Error from accept() call fd 0", "Error from accept() call fd 1"]
    assert lines[2:] == [None, None, None]
    assert limiter.admit("Error from accept() call fd 9", now=11.0) == (
        "Error from accept() call fd 9 [3 similar lines suppressed]")
    assert limiter.admit("another line", now=0.0) == "another line"


def test_channel_budget_refuses_at_the_limit() -> None:
    budget = ChannelBudget(3)
    budget.register("ca", lambda: 2)
    budget.register("pva", lambda: 1)
    assert "PODIOC_MAX_CHANNELS=3" in budget.admit("PVA", "X", "1.2.3.4:5")
    assert budget.admit("CA", "X", "1.2.3.4:5", counted=True) == ""
    assert budget.refused == 1


def test_pvxs_report_is_parsed_per_peer() -> None:
    text = ("State: Running TCP_Port: 5075 evmethod: epoll\n"
            "    Peer127.0.0.1:37410 backlog=0 TX=404 RX=168 auth=ca\n"
            "ca/root@127.0.0.1:37410        X:A TX=342 RX=92     Executing ioid=2 MONITOR\n"
            "        X:B TX=1 RX=2 IDLE sid=1 cid=2\n"
            "    Peer[::1]:46652 backlog=0 TX=36 RX=0 auth=anonymous\n"
            "anonymous/anonymous@[::1]:46652")
    report = Report.parse(text)
    assert report.rx == {("127.0.0.1", 37410): 168, ("::1", 46652): 0}
    assert report.channels == {("127.0.0.1", 37410): 2, ("::1", 46652): 0}


def test_socket_table_shows_bytes_received() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            server, _ = listener.accept()
            with server:
                client.sendall(b"x" * 1000)
                conns: list[sockdiag.TcpConn] = []
                for _ in range(100):  # the bytes arrive at once on loopback
                    conns = sockdiag.connections(port) or []
                    if conns and conns[0].bytes_received == 1000:
                        break
                assert len(conns) == 1
                assert conns[0].peer == ("127.0.0.1", client.getsockname()[1])
                assert (conns[0].bytes_received, conns[0].rqueue) == (1000, 1000)


def test_dead_peer_options_follow_the_timeout() -> None:
    opts = {(level, opt): value for level, opt, value in deadpeer.options(60)}
    assert opts[(socket.SOL_SOCKET, socket.SO_KEEPALIVE)] == 1
    assert opts[(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)] == 30
    assert opts[(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)] == 7
    assert opts[(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)] == 60_000
