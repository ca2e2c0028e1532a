"""The health PVs (the iocStats names) without a server: texts, settings, cgroup memory,
the start counter, SYSRESET's writability and its hook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from podioc import IOC
from podioc.autosave.starts import count_start, counter_path
from podioc.config import InstanceConfig
from podioc.diagnostics.describe import describe_instance
from podioc.model import Kind
from podioc.runtime.health import HEALTH_SPECS, Health
from podioc.runtime.iocstats import NOT_AVAILABLE, HealthSettings, uptime_text
from podioc.runtime.sysinfo import cgroup_memory, fit


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "00:00:00"), (3723.9, "01:02:03"), (86399, "23:59:59"), (86400, "1 day, 00:00:00"),
    (2 * 86400 + 61, "2 days, 00:01:01"), (400 * 86400, "400 days, 00:00:00")])
def test_uptime_as_iocstats_writes_it(seconds: float, text: str) -> None:
    assert uptime_text(seconds) == text


def test_fit_cuts_bytes_not_characters() -> None:
    assert fit("a" * 50) == "a" * 39
    assert fit("é" * 20) == "é" * 19  # 2 bytes each: 38 bytes, never half a character


def test_engineer_and_location_environment_then_config_then_login() -> None:
    block = {"engineer": "A. Smith", "location": "BL01", "sysreset": "open"}
    assert HealthSettings.from_config(block, {"ENGINEER": "B. Jones", "USER": "u"}) == (
        HealthSettings("B. Jones", "BL01", "open"))
    assert HealthSettings.from_config({}, {"LOGNAME": "ioc", "USER": "u"}) == (
        HealthSettings("ioc", NOT_AVAILABLE, "rules"))
    assert HealthSettings.from_config({}, {}) == HealthSettings()
    with pytest.raises(ValueError, match="sysreset"):
        HealthSettings(sysreset="off")


@pytest.mark.parametrize(("mode", "rules", "writable"), [
    ("rules", False, False), ("rules", True, True), ("open", False, True),
    ("open", True, True), ("never", False, False), ("never", True, False)])
def test_sysreset_writable(mode: str, rules: bool, writable: bool) -> None:
    assert HealthSettings(sysreset=mode).sysreset_writable(rules) is writable
    ioc = IOC("P:")
    health = Health(ioc, HealthSettings(sysreset=mode), access_rules=rules)
    assert health.pvs["SYSRESET"].spec.writable is writable


def test_sysreset_put_calls_on_reset_for_non_zero_only() -> None:
    ioc = IOC("P:")
    health = Health(ioc, HealthSettings(sysreset="open"))
    calls: list[int] = []
    health.on_reset = lambda: calls.append(1)
    asyncio.run(health.pvs["SYSRESET"].put(0))
    assert calls == []
    asyncio.run(health.pvs["SYSRESET"].put(1))
    assert calls == [1]


def test_specs_follow_the_record_types() -> None:
    kinds = {name: spec.kind for name, spec in HEALTH_SPECS.items()}
    for name in ("HEARTBEAT", "START_CNT", "CA_CLNT_CNT", "FD_FREE", "MEM_USED", "SYSRESET"):
        assert kinds[name] is Kind.FLOAT, name
    for name in ("UPTIME", "TOD", "STARTTOD", "HOSTNAME", "ENGINEER", "LOCATION"):
        assert kinds[name] is Kind.STRING, name
    assert kinds["APP_DIR"] is Kind.ARRAY and HEALTH_SPECS["APP_DIR"].dtype == "uint8"
    assert kinds["UPTIME_S"] is Kind.FLOAT and HEALTH_SPECS["UPTIME_S"].units == "s"


def test_update_fills_every_figure() -> None:
    ioc = IOC("P:")
    health = Health(ioc)
    health.ca_clients, health.ca_channels = (lambda: 2), (lambda: 7)
    health.update()
    health.update()  # the second tick has CPU figures
    p = {key: live.raw for key, live in health.pvs.items()}
    assert (p["HEARTBEAT"], p["CA_CLNT_CNT"], p["CA_CLIENTS"], p["CA_CONN_CNT"]) == (2, 2, 2, 7)
    assert 0 < p["MEM_USED"] < p["MEM_MAX"] and 0 <= p["MEM_FREE"] <= p["MEM_MAX"]
    assert 0 < p["FD_CNT"] <= p["FD_MAX"] and p["FD_FREE"] == p["FD_MAX"] - p["FD_CNT"]
    assert p["RECORD_CNT"] == p["PV_COUNT"] == len(ioc.pvs)
    assert p["START_CNT"] == 1


def _cgroup(tmp_path: Path, proc_line: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-cgroup"
    proc.write_text(proc_line + "\n")
    return root, proc


def test_cgroup_v2_limit_of_the_process_group(tmp_path: Path) -> None:
    root, proc = _cgroup(tmp_path, "0::/kubepods/pod1/ioc", {
        "kubepods/pod1/ioc/memory.max": "max\n",  # no limit on the container itself
        "kubepods/pod1/ioc/memory.current": "1000\n",
        "kubepods/pod1/memory.max": "268435456\n",  # the pod's limit applies
        "kubepods/pod1/memory.current": "4096\n"})
    assert cgroup_memory(root, proc) == (268435456, 4096)


def test_cgroup_v1_and_no_limit(tmp_path: Path) -> None:
    root, proc = _cgroup(tmp_path, "5:memory:/docker/abc", {
        "memory/docker/abc/memory.limit_in_bytes": "536870912\n",
        "memory/docker/abc/memory.usage_in_bytes": "2048\n"})
    assert cgroup_memory(root, proc) == (536870912, 2048)
    root, proc = _cgroup(tmp_path / "none", "5:memory:/", {
        "memory/memory.limit_in_bytes": str(2**63 - 4096)})
    assert cgroup_memory(root, proc) is None


def test_start_counter(tmp_path: Path) -> None:
    path = counter_path(tmp_path, "BL01_TEMP-0a1b2c3d.sav")
    assert path.name == "BL01_TEMP-0a1b2c3d.starts"
    assert [count_start(path) for _ in range(3)] == [1, 2, 3]
    assert path.read_text() == "3\n"
    stale = tmp_path / f".{path.name}.12345.tmp"  # left by a process killed mid-write
    stale.write_text("4\n")
    path.write_text("garbage")
    assert count_start(path) == 1  # unreadable: counted again from 1
    assert not stale.exists()


@pytest.mark.parametrize(("access", "block", "writable"), [
    ({}, {}, False), ({"rules": "ASG(DEFAULT) { RULE(1, WRITE) }"}, {}, True),
    ({}, {"sysreset": "open"}, True)])
def test_describe_shows_sysreset_as_run_serves_it(access: dict[str, str],
                                                  block: dict[str, str],
                                                  writable: bool) -> None:
    cfg = InstanceConfig(ioc="podioc:IOC", prefix="P:", access=access, health_block=block)
    doc = describe_instance(cfg, IOC)
    (entry,) = [p for p in doc["pvs"] if p["name"] == "P:SYSRESET"]
    assert entry["writable"] is writable and entry["health"] is True
