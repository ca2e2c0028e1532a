"""The put log of a real IOC: accepted and refused puts over CA and PVA, and a burst.

The IOC (``iocs/putlog_ioc.py``) writes its put log to standard output (the
harness's log file, merged with standard error) and to a file; puts to one PV
by one client within 0.3 s are one line. Refusals: out of range, wrong type
(CA only: a PVA client converts to the server's type before it sends),
access rules, read-only PV, read-only record field.
"""

from __future__ import annotations

import getpass
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
from caproto import ChannelType
from p4p.client.thread import RemoteError

from harness import IocProcess, TcpReceiver, ca_pv, caproto_client, poll_until, pva_client

IOC = Path(__file__).resolve().parent / "iocs" / "putlog_ioc.py"
WINDOW = 0.3
CONFIG = f"""
ioc: '{IOC}:PutLogTarget'
prefix: 'PL:'
put_log:
  file: log/puts.jsonl
  coalesce: {WINDOW}
access:
  rules: |
    ASG(DEFAULT) {{ RULE(1, READ) RULE(1, WRITE) }}
    ASG(CLOSED) {{ RULE(1, READ) }}
  groups:
    CLOSED: [DENIED]
"""


@pytest.fixture(scope="module")
def ioc(module_ioc_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> IocProcess:
    directory = tmp_path_factory.mktemp("putlog")
    (directory / "putlog.yaml").write_text(CONFIG)
    return module_ioc_factory(directory / "putlog.yaml", name="putlog")  # type: ignore[no-any-return]


def file_lines(ioc: IocProcess) -> list[dict[str, Any]]:
    path = Path(ioc.target).parent / "log" / "puts.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line]


def stdout_lines(ioc: IocProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ioc.log_text().splitlines()
            if line.startswith('{"date"')]


def matching(ioc: IocProcess, protocol: str, pv: str, outcome: str) -> list[dict[str, Any]]:
    """The put-log lines in the file for this protocol, PV and outcome."""
    return [entry for entry in file_lines(ioc)
            if (entry["protocol"], entry["pv"], entry["outcome"]) == (protocol, pv, outcome)]


def wait_for(ioc: IocProcess, protocol: str, pv: str, outcome: str,
             timeout: float = 15.0) -> dict[str, Any]:
    """The first matching put-log line, polled until it is written."""
    found: list[dict[str, Any]] = poll_until(
        lambda: matching(ioc, protocol, pv, outcome), timeout=timeout,
        message=f"a {protocol} {outcome} line for {pv}")
    return found[0]


def check_common(entry: dict[str, Any], protocol: str) -> None:
    assert entry["host"] == "127.0.0.1"
    assert entry["user"] == getpass.getuser()
    assert entry["protocol"] == protocol
    assert len(entry["date"]) == 10 and len(entry["time"]) == 12  # 2026-12-06, 13:02:08.124


def test_ca_puts_accepted_and_refused(ioc: IocProcess) -> None:
    with caproto_client(ioc) as ctx:
        sp = ca_pv(ctx, ioc.pv("SP"))
        assert sp.write([20.0], wait=True, timeout=10).status.success
        assert not sp.write([500.0], wait=True, timeout=10).status.success
        assert not sp.write(["abc"], data_type=ChannelType.STRING, wait=True,
                            timeout=10).status.success
        assert not ca_pv(ctx, ioc.pv("DENIED")).write([3.0], wait=True,
                                                       timeout=10).status.success
        assert not ca_pv(ctx, ioc.pv("RO")).write([2.0], wait=True, timeout=10).status.success
        wave = ca_pv(ctx, ioc.pv("WAVE"))
        assert wave.write([5.0, 6.0, 7.0], wait=True, timeout=10).status.success
        mode = ca_pv(ctx, ioc.pv("MODE"))
        assert mode.write(["ON"], data_type=ChannelType.STRING, wait=True,
                          timeout=10).status.success

    accepted = wait_for(ioc, "ca", ioc.pv("SP"), "accepted")
    check_common(accepted, "ca")
    assert (accepted["old"], accepted["new"]) == (10.0, 20.0)
    assert "reason" not in accepted and "count" not in accepted

    refused = poll_until(lambda: len(found := matching(ioc, "ca", ioc.pv("SP"), "refused")) >= 2
                         and found, timeout=15, message="two refused CA lines for SP")
    by_new = {e["new"]: e for e in refused}
    assert "outside the limits 0 .. 100" in by_new[500.0]["reason"]
    assert "could not convert string to float" in by_new["abc"]["reason"]
    assert all(e["old"] == 20.0 for e in refused)  # refused: nothing changed

    denied = wait_for(ioc, "ca", ioc.pv("DENIED"), "refused")
    check_common(denied, "ca")
    assert (denied["old"], denied["new"]) == (0.0, 3.0)
    assert "no write access" in denied["reason"]
    assert "no write access" in wait_for(ioc, "ca", ioc.pv("RO"), "refused")["reason"]

    array = wait_for(ioc, "ca", ioc.pv("WAVE"), "accepted")
    assert (array["old"], array["old-size"]) == ([1.0, 2.0], 2)
    assert (array["new"], array["new-size"]) == ([5.0, 6.0, 7.0], 3)
    enum = wait_for(ioc, "ca", ioc.pv("MODE"), "accepted")
    assert (enum["old"], enum["new"]) == ("OFF", "ON")


def test_pva_puts_accepted_and_refused(ioc: IocProcess) -> None:
    with pva_client(ioc) as ctx:
        ctx.put(ioc.pv("LABEL"), "from pva", timeout=10)
        for name, value, reason in (("LABEL", "x" * 60, "longer than"),
                                    ("DENIED", 4.0, "no write access"),
                                    ("RO", 2.0, "read-only"),
                                    ("SP.RTYP", "ai", "read-only")):
            with pytest.raises(RemoteError, match=reason):
                ctx.put(ioc.pv(name), value, timeout=10)
        ctx.put(ioc.pv("SP.DESC"), "relabelled", timeout=10)  # a metadata field
        with pytest.raises(RemoteError, match="leaves the display range empty"):
            ctx.put(ioc.pv("SP.HOPR"), -5.0, timeout=10)

    accepted = wait_for(ioc, "pva", ioc.pv("LABEL"), "accepted")
    check_common(accepted, "pva")
    assert (accepted["old"], accepted["new"]) == ("first", "from pva")
    too_long = wait_for(ioc, "pva", ioc.pv("LABEL"), "refused")
    assert (too_long["old"], too_long["new"]) == ("from pva", "x" * 60)
    denied = wait_for(ioc, "pva", ioc.pv("DENIED"), "refused")
    check_common(denied, "pva")
    assert denied["new"] == 4.0 and "no write access" in denied["reason"]
    assert "read-only" in wait_for(ioc, "pva", ioc.pv("RO"), "refused")["reason"]
    field = wait_for(ioc, "pva", ioc.pv("SP.RTYP"), "refused")
    assert field["new"] == "ai" and "is read-only" in field["reason"]
    desc = wait_for(ioc, "pva", ioc.pv("SP.DESC"), "accepted")
    assert desc["new"] == "relabelled"
    # the access provider let the field provider make the channel, without a traceback
    assert "p4p.server: Unexpected" not in ioc.log_text()


def test_the_same_lines_go_to_stdout(ioc: IocProcess) -> None:
    with pva_client(ioc) as ctx:
        ctx.put(ioc.pv("SP"), 42.0, timeout=10)
    wait_for(ioc, "pva", ioc.pv("SP"), "accepted")
    on_stdout = poll_until(lambda: [e for e in stdout_lines(ioc)
                                    if e["pv"] == ioc.pv("SP") and e["protocol"] == "pva"],
                           timeout=10, message="the PVA line for SP on stdout")
    assert on_stdout[0]["new"] == 42.0


def test_a_burst_is_coalesced_and_the_counts_add_up(ioc: IocProcess) -> None:
    """3,000 puts in a burst (bounded in count and time) become a few lines."""
    count, limit = 3000, 30.0
    with caproto_client(ioc) as ctx:
        burst = ca_pv(ctx, ioc.pv("BURST"))
        t0 = time.monotonic()
        sent = 0
        while sent < count and time.monotonic() - t0 < limit:
            burst.write([float(sent % 100)], wait=False)
            sent += 1
        assert burst.write([-1.0], wait=True, timeout=30).status.success
        seconds = time.monotonic() - t0
    sent += 1

    def lines() -> list[dict[str, Any]] | None:
        found = [e for e in file_lines(ioc) if e["pv"] == ioc.pv("BURST")]
        return found if sum(e.get("count", 1) for e in found) >= sent else None

    found = poll_until(lines, timeout=20, message=f"lines counting {sent} puts to BURST")
    assert sum(e.get("count", 1) for e in found) == sent
    assert all(e["outcome"] == "accepted" for e in found)
    # one line per window (plus one for a window cut at each end), far fewer than puts
    assert len(found) <= seconds / WINDOW + 3, (len(found), seconds)
    assert len(found) < sent / 20
    assert found[0]["old"] == 0.0 and found[-1]["new"] == -1.0
    for before, after in itertools.pairwise(found):
        assert after["old"] == before["new"]  # each line starts where the last ended
    for entry in found:
        if entry.get("count", 1) > 1:
            assert -1.0 <= entry["min"] <= entry["max"] <= 99.0


def test_lines_go_to_a_tcp_log_server(ioc_factory: Any, tmp_path: Path) -> None:
    """``put_log.tcp``: every line reaches a log server on loopback, one per message."""
    with TcpReceiver() as receiver:
        config = tmp_path / "tcp.yaml"
        config.write_text(f"ioc: '{IOC}:PutLogTarget'\nprefix: 'PL:'\nput_log:\n"
                          f"  stdout: false\n  coalesce: 0\n"
                          f"  tcp: 127.0.0.1:{receiver.port}\n")
        ioc = ioc_factory(config, name="putlog-tcp")
        with caproto_client(ioc) as ctx:
            assert ca_pv(ctx, ioc.pv("SP")).write([1.0], wait=True, timeout=10).status.success
        with pva_client(ioc) as pva, pytest.raises(RemoteError):
            pva.put(ioc.pv("SP"), 101.0, timeout=10)

        def entries() -> list[dict[str, Any]] | None:
            text = receiver.data.decode()
            found = [json.loads(line) for line in text.splitlines() if line]
            return found if len(found) >= 2 else None

        found = poll_until(entries, timeout=20, message="two lines at the log server")
        assert [(e["protocol"], e["outcome"], e["new"]) for e in found] == [
            ("ca", "accepted", 1.0), ("pva", "refused", 101.0)]
        assert not any(line.startswith('{"date"') for line in ioc.log_text().splitlines())
