"""The put log without an IOC: coalescing, line format, writer, sinks, service, settings."""

from __future__ import annotations

import asyncio
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import TcpReceiver
from podioc import ConfigError
from podioc.putlog import PutLog, PutLogSettings
from podioc.putlog.coalesce import Coalescer, Group, Key, reason_kind
from podioc.putlog.lines import MAX_ELEMENTS, fields, line
from podioc.putlog.sinks import FileSink, StreamSink, TcpSink
from podioc.putlog.writer import Writer

KEY: Key = ("P:SP", "10.0.0.1", "alice", "ca", True, "")
T0 = 1_765_000_000_123_456_789  # 2025-12-06T05:46:40.123 UTC


class ListSink:
    """Collects lines; thread-safe enough for one writer thread."""

    name = "list"

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False

    def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def close(self) -> None:
        self.closed = True


# -- coalescing ----------------------------------------------------------------------
def test_puts_within_the_window_become_one_group() -> None:
    c = Coalescer(window=1.0)
    assert c.add(KEY, 1.0, 2.0, "", T0, now=10.0) is None
    assert c.add(KEY, 2.0, 7.5, "", T0 + 1, now=10.5) is None
    assert c.add(KEY, 7.5, -3.0, "", T0 + 2, now=10.9) is None
    assert c.due(10.99) == []
    (group,) = c.due(11.0)
    assert (group.old, group.new, group.count, group.lo, group.hi) == (1.0, -3.0, 3, -3.0, 7.5)
    assert group.time_ns == T0 + 2  # the last put's time, as caPutLog
    assert len(c) == 0


def test_each_client_pv_and_outcome_has_its_own_group_even_interleaved() -> None:
    c = Coalescer(window=1.0)
    other_pv = ("P:B", *KEY[1:])
    other_client = (KEY[0], "10.0.0.2", *KEY[2:])
    refused = (*KEY[:4], False, reason_kind("P:SP: 500 is outside the limits 0 .. 100"))
    for i in range(10):  # alternating PVs and clients still coalesce
        for key in (KEY, other_pv, other_client):
            c.add(key, float(i), float(i + 1), "", T0, now=0.0)
    c.add(refused, 1.0, 500.0, "P:SP: 500 is outside the limits 0 .. 100", T0, now=0.0)
    c.add(refused, 1.0, 600.0, "P:SP: 600 is outside the limits 0 .. 100", T0, now=0.0)
    groups = c.due(1.0)
    assert [g.key for g in groups] == [KEY, other_pv, other_client, refused]
    assert [g.count for g in groups] == [10, 10, 10, 2]
    assert groups[3].reason == "P:SP: 600 is outside the limits 0 .. 100"


def test_refusals_group_by_reason_with_numbers_masked() -> None:
    assert reason_kind("X: 500.5 is outside 0 .. 100") == reason_kind("X: 7 is outside 1 .. 2")
    assert reason_kind("X: no write access") != reason_kind("X: 7 is outside 1 .. 2")


def test_a_window_of_zero_writes_every_put() -> None:
    c = Coalescer(window=0.0)
    group = c.add(KEY, 1, 2, "", T0, now=0.0)
    assert group is not None and group.count == 1 and len(c) == 0


def test_the_oldest_group_closes_early_when_too_many_are_open() -> None:
    c = Coalescer(window=10.0, max_open=2)
    keys = [(f"P:{i}", *KEY[1:]) for i in range(3)]
    assert c.add(keys[0], 0, 1, "", T0, now=0.0) is None
    assert c.add(keys[1], 0, 1, "", T0, now=0.1) is None
    evicted = c.add(keys[2], 0, 1, "", T0, now=0.2)
    assert evicted is not None and evicted.key == keys[0]
    assert len(c) == 2 and c.next_deadline() == pytest.approx(10.1)
    assert [g.key for g in c.drain()] == keys[1:]


@pytest.mark.parametrize("values", [[1.0, "x", 2.0], [1.0, math.nan], [True, False],
                                    [np.zeros(2), np.ones(2)]])
def test_min_and_max_only_for_plain_numbers(values: list[Any]) -> None:
    group = Group(KEY, 0, values[0], "", T0, 1.0)
    for value in values[1:]:
        group.add(value, "", T0)
    assert group.lo is None and group.hi is None


# -- the line ------------------------------------------------------------------------
def test_a_line_uses_caputlog_names_and_utc_time() -> None:
    group = Group(KEY, 1, 77.5, "", T0, 0.0)
    assert fields(group) == {"date": "2025-12-06", "time": "05:46:40.123", "host": "10.0.0.1",
                             "user": "alice", "pv": "P:SP", "new": 77.5, "old": 1,
                             "protocol": "ca", "outcome": "accepted"}
    assert line(group) == ('{"date":"2025-12-06","time":"05:46:40.123","host":"10.0.0.1",'
                           '"user":"alice","pv":"P:SP","new":77.5,"old":1,"protocol":"ca",'
                           '"outcome":"accepted"}')


def test_a_burst_line_has_min_max_and_count_and_a_refusal_its_reason() -> None:
    key = (*KEY[:4], False, "kind")
    group = Group(key, 77.5, 8.0, "P:SP: too high", T0, 0.0)
    for value in (870.5, 7.5, 8.0):
        group.add(value, "P:SP: too high", T0)
    out = fields(group)
    assert (out["new"], out["old"], out["min"], out["max"], out["count"]) == (
        8.0, 77.5, 7.5, 870.5, 4)
    assert (out["outcome"], out["reason"]) == ("refused", "P:SP: too high")


def test_special_values_arrays_bytes_and_numpy_scalars() -> None:
    group = Group(KEY, np.arange(MAX_ELEMENTS + 10, dtype=np.float64), math.nan, "", T0, 0)
    group.add(-math.inf, "", T0)
    out = fields(group)
    assert out["new"] == "-Infinity" and "min" not in out
    assert len(out["old"]) == MAX_ELEMENTS and out["old-size"] == MAX_ELEMENTS + 10
    out = fields(Group(KEY, b"abc\0\0", np.float32(1.5), "", T0, 0))
    assert (out["old"], out["new"]) == ("abc", 1.5)
    assert json.loads(line(Group(KEY, "é", math.inf, "", T0, 0)))["new"] == "Infinity"
    assert "\\u00e9" in line(Group(KEY, "é", 1, "", T0, 0))  # ASCII whatever the locale


# -- the writer ----------------------------------------------------------------------
def test_the_writer_drops_beyond_its_capacity_and_says_how_many() -> None:
    sink = ListSink()
    writer = Writer([sink], capacity=3)
    for i in range(10):  # before the thread starts: nothing is written meanwhile
        writer.submit(Group(KEY, i, i + 1, "", T0, 0))
    writer.start()
    assert writer.stop(timeout=10)
    assert sink.closed
    entries = [json.loads(text) for text in sink.lines]
    assert [e["new"] for e in entries[:3]] == [1, 2, 3]
    assert entries[3]["dropped"] == 7 and "queue full" in entries[3]["reason"]
    assert (writer.dropped, writer.written) == (7, 4)


def test_a_failing_sink_does_not_stop_the_others() -> None:
    class Broken(ListSink):
        def write(self, lines: list[str]) -> None:
            raise OSError("disk full")

    good = ListSink()
    writer = Writer([Broken(), good], capacity=10)
    writer.start()
    writer.submit(Group(KEY, 1, 2, "", T0, 0))
    assert writer.stop(timeout=10)
    assert len(good.lines) == 1


# -- sinks ---------------------------------------------------------------------------
def test_the_file_is_rotated_by_size(tmp_path: Path) -> None:
    path = tmp_path / "log" / "puts.jsonl"
    sink = FileSink(path, max_bytes=1024, backups=2)
    sink.write([f'{{"n":{i},"pad":"{"x" * 90}"}}' for i in range(100)])
    sink.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "puts.jsonl", "puts.jsonl.1", "puts.jsonl.2"]
    assert all(p.stat().st_size <= 1024 for p in path.parent.iterdir())
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["n"] == 99


def test_no_backups_keeps_only_the_current_file(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "p.jsonl", max_bytes=1024, backups=0)
    sink.write(["y" * 100] * 50)
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]


def test_the_stream_sink_writes_whole_lines() -> None:
    stream = io.StringIO()
    StreamSink(stream).write(["a", "b"])
    assert stream.getvalue() == "a\nb\n"


def test_the_tcp_sink_sends_lines_and_counts_what_it_could_not() -> None:
    receiver = TcpReceiver()
    port = receiver.port
    sink = TcpSink(f"127.0.0.1:{port}", timeout=5.0)
    sink.write(["one", "two"])
    sink.close()
    receiver.close()
    assert receiver.data == b"one\ntwo\n"

    gone = TcpSink(f"127.0.0.1:{port}", timeout=1.0, retry=60.0)
    gone.write(["lost"])
    gone.write(["lost too"])  # not retried before 60 s: counted at once
    assert gone.lost == 2


# -- the service on an event loop -----------------------------------------------------
def test_the_service_coalesces_writes_after_the_window_and_flushes_at_close() -> None:
    sink = ListSink()

    async def scenario() -> None:
        log = PutLog([sink], coalesce=0.05, capacity=100)
        log.start()
        for i in range(100):
            log.record("pva", "P:A", float(i), float(i + 1), "127.0.0.1", "bob")
        log.record("ca", "P:B", 0, 5, "127.0.0.1", "bob", reason="P:B is read-only")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(sink.lines) < 2 and loop.time() < deadline:  # the timer closes both
            await asyncio.sleep(0.01)
        log.record("ca", "P:C", 1, 2, "127.0.0.1", "bob")  # still open at close
        await log.close()
        log.record("ca", "P:D", 1, 2, "127.0.0.1", "bob")  # after close: ignored

    asyncio.run(scenario())
    entries = [json.loads(text) for text in sink.lines]
    assert [e["pv"] for e in entries] == ["P:A", "P:B", "P:C"]
    assert (entries[0]["count"], entries[0]["old"], entries[0]["new"]) == (100, 0.0, 100.0)
    assert (entries[0]["min"], entries[0]["max"]) == (1.0, 100.0)
    assert entries[1]["outcome"] == "refused" and entries[1]["reason"] == "P:B is read-only"
    assert sink.closed


# -- settings ------------------------------------------------------------------------
def test_settings_resolve_the_file_next_to_the_config(tmp_path: Path) -> None:
    settings = PutLogSettings.from_config({"file": "log/p.jsonl", "coalesce": 0},
                                          "x.yaml", tmp_path)
    assert settings.file == tmp_path / "log" / "p.jsonl" and settings.coalesce == 0.0
    log = PutLog.from_settings(settings)
    assert log is not None and [s.name for s in log.writer.sinks] == [
        "stdout", str(tmp_path / "log" / "p.jsonl")]
    assert PutLog.from_settings(PutLogSettings(enabled=False)) is None
    assert PutLog.from_settings(PutLogSettings(stdout=False)) is None


def test_bad_settings_name_the_file_field_and_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        PutLogSettings.from_config({"coalesce": -1, "stdout": "yes"}, "i.yaml", tmp_path)
    text = str(err.value)
    assert "i.yaml: put_log.coalesce" in text and "e.g. coalesce: 1" in text
    assert "put_log.stdout" in text
    (tmp_path / "afile").write_text("")
    settings = PutLogSettings.from_config({"file": "afile/p.jsonl"}, "i.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"i.yaml: put_log.file: cannot write .*writable"):
        PutLog.from_settings(settings)


# -- the README's section ------------------------------------------------------------
README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_sample_lines_and_settings_are_what_podioc_writes_and_reads() -> None:
    import yaml

    section = README.read_text().split("## Put log", 1)[1].split("\n## ", 1)[0]
    sample = section.split("```json\n", 1)[1].split("```", 1)[0]
    known = set(fields(Group((*KEY[:4], False, ""), [1.0], 2.0, "r", T0, 0)))
    known |= {"min", "max", "count", "new-size"}
    for text in sample.splitlines():
        entry = json.loads(text)
        assert set(entry) <= known, set(entry) - known
        assert list(entry)[:5] == ["date", "time", "host", "user", "pv"]
    block = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    settings = PutLogSettings.from_config(block["put_log"], "README.md", Path("/cfg"))
    assert settings == PutLogSettings(file=Path("/cfg/log/puts.jsonl"),
                                      tcp="192.0.2.10:7011", source="README.md")


def test_a_value_that_cannot_be_shown_does_not_end_the_writer() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    sink = ListSink()
    writer = Writer([sink], capacity=10)
    writer.submit(Group(KEY, Unprintable(), 1, "", T0, 0))
    writer.submit(Group(KEY, 1, 2, "", T0, 0))
    writer.start()
    assert writer.stop(timeout=10)
    assert [json.loads(text)["new"] for text in sink.lines] == [2]
