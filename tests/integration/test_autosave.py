"""Autosave end to end: real ``podioc run`` processes, CA and PVA clients, kill -9.

Test IOCs: ``iocs/autosave_basic.py`` (every kind of PV saved; a variant with
narrower limits) and ``iocs/autosave_stress.py`` (a server-less runtime whose
scan puts new values every millisecond, for the kill -9 loop). Every test has
its own tmp autosave directory, unique prefix and free ports.

Environment knobs: ``PODIOC_KILL_LOOP_ITERATIONS`` (default 200) and
``PODIOC_KILL_LOOP_SEED`` (default: random, printed) for the kill -9 loop.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from caproto import ChannelType
from p4p.nt.scalar import ntstr

from harness import (
    IocProcess,
    IocStartError,
    base_env,
    ca_pv,
    caproto_client,
    pva_client,
    unique_prefix,
)
from podioc.autosave.fileformat import CorruptFile, decode
from podioc.autosave.settings import file_name_for
from podioc.autosave.store import AutosaveStore

IOCS = Path(__file__).resolve().parent / "iocs"
BASIC = IOCS / "autosave_basic.py"
STRESS = IOCS / "autosave_stress.py"

IocFactory = Callable[..., IocProcess]


def write_config(directory: Path, *, savedir: Path | None, cls: str = "AutosaveBasic",
                 debounce: float = 0.02, period: float = 30.0, args: str = "{}",
                 name: str = "instance") -> Path:
    """An instance config for the basic autosave IOC (the prefix comes from --prefix)."""
    lines = [f"ioc: '{BASIC}:{cls}'", "prefix: 'UNUSED:'", f"args: {args}", "autosave:",
             f"  debounce: {debounce}", f"  period: {period}"]
    if savedir is not None:
        lines.append(f"  directory: '{savedir}'")
    path = directory / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sav_path(savedir: Path, prefix: str) -> Path:
    return savedir / file_name_for(prefix)


def saved(path: Path) -> dict[str, Any] | None:
    """The values in an autosave file; None if it does not exist (corrupt raises)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    values: dict[str, Any] = decode(data).values
    return values


def wait_saved(path: Path, name: str, value: Any, timeout: float = 10.0) -> float:
    """Poll (1 ms) until the file holds ``name == value``; seconds waited."""
    start = time.monotonic()
    while True:
        values = saved(path)  # a corrupt file raises: it must never be seen
        if values is not None and values.get(name) == value:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{path} did not get {name} = {value!r} in {timeout} s: "
                                 f"{values}")
        time.sleep(0.001)


def ca_write(ctx: Any, name: str, value: Any, string: bool = False) -> None:
    kw = {"data_type": ChannelType.STRING} if string else {}
    response = ca_pv(ctx, name).write([value], wait=True, timeout=10, **kw)
    assert response.status.name == "ECA_NORMAL", (name, value, response)


def ca_read(ctx: Any, name: str, string: bool = False, array: bool = False) -> Any:
    kw = {"data_type": ChannelType.STRING} if string else {}
    data = ca_pv(ctx, name).read(timeout=10, **kw).data
    if array:
        return [float(x) for x in data]
    value = data[0]
    return value.decode() if isinstance(value, bytes) else value.item()


def pva_read(ctx: Any, name: str) -> Any:
    value = ctx.get(name, timeout=10)
    if type(value).__name__ == "ntenum":
        return str(value)
    if isinstance(value, ntstr):
        return value.raw["value"]
    return value.tolist() if hasattr(value, "tolist") else value


def status_via_ca(ctx: Any, ioc: IocProcess) -> tuple[str, int]:
    chan = ca_pv(ctx, ioc.pv("AUTOSAVE_STATUS"))
    response = chan.read(data_type=ChannelType.TIME_STRING, timeout=10)
    return response.data[0].decode(), int(response.metadata.severity)


def start_basic(ioc_factory: IocFactory, tmp_path: Path) -> tuple[str, Path, Path, IocProcess]:
    """A first AutosaveBasic IOC saving to ``tmp_path/sav``: (prefix, config, file, IOC)."""
    prefix = unique_prefix("AS")
    savedir = tmp_path / "sav"
    cfg = write_config(tmp_path, savedir=savedir)
    return prefix, cfg, sav_path(savedir, prefix), ioc_factory(cfg, prefix=prefix,
                                                                 name="first")


# -- round trip ---------------------------------------------------------------------------
def test_round_trip_ca_and_pva_puts_restored_on_both(ioc_factory: IocFactory,
                                                     tmp_path: Path) -> None:
    prefix, cfg, path, first = start_basic(ioc_factory, tmp_path)
    with caproto_client(first) as ca:
        assert status_via_ca(ca, first) == ("NO_FILE", 0)
        ca_write(ca, first.pv("LEVEL"), 42.25)
        ca_write(ca, first.pv("MODE"), "COOL", string=True)
        ca_write(ca, first.pv("LABEL"), "set via CA", string=True)
        ca_write(ca, first.pv("SCRATCH"), 5.5)  # not autosaved
    with pva_client(first) as pva:
        pva.put(first.pv("COUNT"), -17, timeout=10)
        pva.put(first.pv("ENABLED"), "Enabled", timeout=10)
        pva.put(first.pv("TABLE"), [1.5, -2.25, 3e10], timeout=10)
    wait_saved(path, first.pv("TABLE"), [1.5, -2.25, 3e10])
    assert first.stop() == 0
    assert saved(path) == {first.pv("LEVEL"): 42.25, first.pv("COUNT"): -17,
                           first.pv("MODE"): "COOL", first.pv("ENABLED"): True,
                           first.pv("LABEL"): "set via CA",
                           first.pv("TABLE"): [1.5, -2.25, 3e10]}

    second = ioc_factory(cfg, prefix=prefix, name="second")
    expected = {"LEVEL": 42.25, "COUNT": -17, "MODE": "COOL", "ENABLED": "Enabled",
                "LABEL": "set via CA", "TABLE": [1.5, -2.25, 3e10], "SCRATCH": 0.0}
    with caproto_client(second) as ca:
        seen_ca = {key: ca_read(ca, second.pv(key), string=key in ("MODE", "ENABLED", "LABEL"),
                                array=key == "TABLE") for key in expected}
        assert status_via_ca(ca, second) == ("OK", 0)
        assert ca_read(ca, second.pv("AUTOSAVE_LAST_SAVE"), string=True) != ""
    with pva_client(second) as pva:
        seen_pva = {key: pva_read(pva, second.pv(key)) for key in expected}
        assert pva_read(pva, second.pv("AUTOSAVE_STATUS")) == "OK"
    assert seen_ca == expected
    assert seen_pva == expected
    assert "OK: restored 6 of 6 saved values" in second.log_text()


def test_metadata_written_by_clients_is_saved_and_restored(ioc_factory: IocFactory,
                                                           tmp_path: Path) -> None:
    """A written ``.EGU``/``.HIHI``/``.HHSV`` of an autosaved PV survives a restart;
    fields left as declared are not written to the file."""
    prefix, cfg, path, first = start_basic(ioc_factory, tmp_path)
    with caproto_client(first) as ca:
        ca_write(ca, first.pv("LEVEL.EGU"), "cm", string=True)
        ca_write(ca, first.pv("LEVEL.HIHI"), 5.0)  # LEVEL is 10: a MAJOR alarm now
        ca_write(ca, first.pv("LEVEL.HHSV"), "MINOR", string=True)
        ca_write(ca, first.pv("SCRATCH.EGU"), "V", string=True)  # not autosaved
    wait_saved(path, first.pv("LEVEL.HHSV"), "MINOR")
    assert first.stop() == 0
    values = saved(path)
    assert values is not None
    assert {k: v for k, v in values.items() if "." in k} == {
        first.pv("LEVEL.EGU"): "cm", first.pv("LEVEL.HIHI"): 5.0,
        first.pv("LEVEL.HHSV"): "MINOR"}

    second = ioc_factory(cfg, prefix=prefix, name="second")
    with pva_client(second, nt=False) as pva:
        level = pva.get(second.pv("LEVEL"), timeout=10)
        assert level["display.units"] == "cm"
        assert level["valueAlarm.highAlarmLimit"] == 5.0
        assert (level["alarm.severity"], level["alarm.message"]) == (1, "HIHI")
        assert pva.get(second.pv("SCRATCH"), timeout=10)["display.units"] == ""
    assert "OK: restored 9 of 9 saved values" in second.log_text()


# -- shutdown ----------------------------------------------------------------------------
def test_sigterm_flushes_the_last_put(ioc_factory: IocFactory, tmp_path: Path) -> None:
    """Debounce and period far longer than the test: only the shutdown save can
    write the puts. The directory comes from PODIOC_AUTOSAVE_DIR here."""
    prefix = unique_prefix("AS")
    savedir = tmp_path / "env-sav"
    cfg = write_config(tmp_path, savedir=None, debounce=600, period=600)
    env = {"PODIOC_AUTOSAVE_DIR": str(savedir)}
    path = sav_path(savedir, prefix)
    first = ioc_factory(cfg, prefix=prefix, name="first", extra_env=env)
    with caproto_client(first) as ca:
        ca_write(ca, first.pv("MODE"), "HEAT", string=True)
        ca_write(ca, first.pv("LEVEL"), 77.5)
    assert saved(path) is None  # nothing written yet: the debounce is 600 s
    assert first.stop() == 0
    assert first.stop_seconds is not None and first.stop_seconds < 5.0
    values = saved(path)
    assert values is not None and values[first.pv("LEVEL")] == 77.5
    # the shutdown hook's safe state (MODE=OFF) came after the final save
    assert values[first.pv("MODE")] == "HEAT"
    assert "final autosave written" in first.log_text()

    second = ioc_factory(cfg, prefix=prefix, name="second", extra_env=env)
    with pva_client(second) as pva:
        assert pva_read(pva, second.pv("LEVEL")) == 77.5
        assert pva_read(pva, second.pv("MODE")) == "HEAT"
    print(f"\nSIGTERM -> exit 0 in {first.stop_seconds:.3f} s (including the final save)")


def test_second_signal_forces_exit_after_the_flush(ioc_factory: IocFactory,
                                                   tmp_path: Path) -> None:
    prefix = unique_prefix("AS")
    savedir = tmp_path / "sav"
    cfg = write_config(tmp_path, savedir=savedir, debounce=600, period=600,
                       args="{slow_shutdown: 60}")
    ioc = ioc_factory(cfg, prefix=prefix)
    with pva_client(ioc) as pva:
        pva.put(ioc.pv("LABEL"), "before the signals", timeout=10)
    ioc.send_signal(signal.SIGTERM)
    ioc.wait_for_log("final autosave written")
    t0 = time.monotonic()
    ioc.send_signal(signal.SIGINT)
    assert ioc.wait(timeout=10) == 1
    assert time.monotonic() - t0 < 5.0
    assert "second SIGINT: exiting now" in ioc.log_text()
    values = saved(sav_path(savedir, prefix))
    assert values is not None and values[ioc.pv("LABEL")] == "before the signals"


# -- damaged files -------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _corrupt(path: Path) -> None:
    """Change one digit of a value: a plausible file that the checksum must reject."""
    data = bytearray(path.read_bytes())
    at = data.index(b"LEVEL ") + len(b"LEVEL ")
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "expected_level"), [
    ({0: _truncate}, 20.0),
    ({0: _corrupt}, 20.0),
    ({0: _corrupt, 1: _truncate}, 15.0),
], ids=["truncated-current", "corrupted-current", "current-and-previous-damaged"])
def test_damaged_files_fall_back_to_the_newest_good_generation(
        ioc_factory: IocFactory, tmp_path: Path, damage: dict[int, Callable[[Path], None]],
        expected_level: float) -> None:
    prefix = unique_prefix("AS")
    savedir = tmp_path / "sav"
    cfg = write_config(tmp_path, savedir=savedir)
    path = sav_path(savedir, prefix)
    store = AutosaveStore(savedir, path.name, 3)
    first = ioc_factory(cfg, prefix=prefix, name="first")
    with caproto_client(first) as ca:
        wait_saved(path, first.pv("LEVEL"), 10.0)  # the first file, with initial values
        for level in (15.0, 20.0, 30.0):
            ca_write(ca, first.pv("LEVEL"), level)
            wait_saved(path, first.pv("LEVEL"), level)
    assert first.stop() == 0
    levels = [saved(store.generation_path(g))[first.pv("LEVEL")]  # type: ignore[index]
              for g in range(4)]
    assert levels == [30.0, 20.0, 15.0, 10.0]
    for generation, fn in damage.items():
        fn(store.generation_path(generation))
        with pytest.raises(CorruptFile):
            decode(store.generation_path(generation).read_bytes())

    second = ioc_factory(cfg, prefix=prefix, name="second")
    with caproto_client(second) as ca:
        assert ca_read(ca, second.pv("LEVEL")) == expected_level
        assert status_via_ca(ca, second) == ("RESTORED_FROM_BACKUP", 1)
    with pva_client(second) as pva:
        assert pva_read(pva, second.pv("LEVEL")) == expected_level
        assert pva_read(pva, second.pv("AUTOSAVE_STATUS")) == "RESTORED_FROM_BACKUP"
    log = second.log_text()
    assert f"{path} is unusable" in log
    assert "RESTORED_FROM_BACKUP: restored 6 of 6" in log
    assert (savedir / f"{path.name}.bad").exists()
    # a fresh, good current file replaces the damaged one
    wait_saved(path, second.pv("LEVEL"), expected_level)


def test_saved_value_outside_new_limits_is_skipped_with_warning(ioc_factory: IocFactory,
                                                                tmp_path: Path) -> None:
    prefix = unique_prefix("AS")
    savedir = tmp_path / "sav"
    first = ioc_factory(write_config(tmp_path, savedir=savedir, name="wide"), prefix=prefix,
                        name="wide")
    with caproto_client(first) as ca:
        ca_write(ca, first.pv("LEVEL"), 90.0)
        ca_write(ca, first.pv("LABEL"), "kept", string=True)
    assert first.stop() == 0

    narrow_cfg = write_config(tmp_path, savedir=savedir, cls="AutosaveNarrow", name="narrow")
    second = ioc_factory(narrow_cfg, prefix=prefix, name="narrow")
    with caproto_client(second) as ca:
        assert ca_read(ca, second.pv("LEVEL")) == 10.0  # the initial value
        assert ca_read(ca, second.pv("LABEL"), string=True) == "kept"
        assert status_via_ca(ca, second) == ("VALUES_SKIPPED", 1)
    log = second.log_text()
    assert f"skipped saved value {prefix}LEVEL = 90.0: outside the limits 0 .. 50" in log
    assert "VALUES_SKIPPED: restored 5 of 6 saved values" in log


def test_two_iocs_cannot_share_autosave_files(ioc_factory: IocFactory, tmp_path: Path) -> None:
    prefix = unique_prefix("AS")
    cfg = write_config(tmp_path, savedir=tmp_path / "sav")
    ioc_factory(cfg, prefix=prefix, name="first")
    second = IocProcess(cfg, prefix=prefix, log_dir=tmp_path, name="second")
    with pytest.raises(IocStartError, match="in use by another running IOC"):
        second.start(attempts=1)
    second.stop()


# -- latency -------------------------------------------------------------------------------
@pytest.mark.parametrize("debounce", [0.05, 0.5])
def test_save_latency_at_the_configured_debounce(ioc_factory: IocFactory, tmp_path: Path,
                                                 debounce: float) -> None:
    """CA put (acknowledged) -> new file on disk, polled every 1 ms."""
    prefix = unique_prefix("AS")
    savedir = tmp_path / "sav"
    cfg = write_config(tmp_path, savedir=savedir, debounce=debounce)
    path = sav_path(savedir, prefix)
    ioc = ioc_factory(cfg, prefix=prefix)
    samples = 20 if debounce < 0.1 else 6
    latencies = []
    with caproto_client(ioc) as ca:
        wait_saved(path, ioc.pv("COUNT"), 0)
        chan = ca_pv(ca, ioc.pv("COUNT"))
        for n in range(1, samples + 1):
            t0 = time.monotonic()
            chan.write([n], wait=True, timeout=10)
            wait_saved(path, ioc.pv("COUNT"), n)
            latencies.append(time.monotonic() - t0)
    median, worst = statistics.median(latencies), max(latencies)
    print(f"\nsave latency at debounce {debounce} s over {samples} CA puts: median "
          f"{median * 1000:.1f} ms, min {min(latencies) * 1000:.1f} ms, "
          f"max {worst * 1000:.1f} ms")
    assert min(latencies) >= debounce * 0.9
    assert worst < debounce + 1.0


# -- kill -9 -------------------------------------------------------------------------------
class StressChild:
    """One run of the stress IOC; its stdout lines collected by a thread."""

    def __init__(self, savedir: Path, prefix: str, debounce: float, log: Path) -> None:
        env = base_env()
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(STRESS), str(savedir), prefix, str(debounce)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                start_new_session=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if line.startswith("READY "):
                self.ready.set()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def restored(self) -> dict[str, Any] | None:
        for line in self.lines:
            if line.startswith("READY "):
                value: dict[str, Any] = json.loads(line[6:])
                return value
        return None

    def numbers(self, tag: str) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith(tag + " ")]


def _consistent(count: int, text: str, wave: list[int], level: float) -> bool:
    return text == f"n={count}" and wave == [count] * 4 and level == count / 1000


@pytest.mark.timeout(420)  # about 100 s on 2 cores for 200 iterations
def test_kill_9_loop_never_loses_an_accepted_value(tmp_path: Path) -> None:
    """Kill the IOC with SIGKILL at random moments while it puts and saves; after
    every kill the files must be readable and hold a consistent set of values that
    was accepted, no older than the last save reported; the next start must restore
    exactly that set with status OK."""
    iterations = int(os.environ.get("PODIOC_KILL_LOOP_ITERATIONS", "200"))
    seed = int(os.environ.get("PODIOC_KILL_LOOP_SEED", str(time.time_ns() % 2**32)))
    rng = random.Random(seed)
    where = f"(seed {seed}; set PODIOC_KILL_LOOP_SEED to repeat)"
    prefix = unique_prefix("KILL")
    savedir = tmp_path / "sav"
    store = AutosaveStore(savedir, file_name_for(prefix), 3)
    log = tmp_path / "stress.log"
    accepted = {0}  # the initial value counts: a first start may save it
    expected_restore: int | None = None  # what the next start must restore
    stats = {"early kills": 0, "kills during a save": 0, "runs that saved": 0}
    max_count = 0
    start = time.monotonic()
    for i in range(iterations + 1):
        child = StressChild(savedir, prefix, 0.002, log)
        try:
            last = i == iterations
            early = not last and i % 8 == 7
            if early:  # anywhere in start-up: imports, restore, first puts
                stats["early kills"] += 1
                time.sleep(rng.uniform(0.0, 0.4))
            else:
                assert child.ready.wait(timeout=30), f"run {i}: no READY {where}"
                if not last:
                    time.sleep(rng.uniform(0.0, 0.15))
        finally:
            child.kill()
        restored = child.restored()
        if restored is not None:
            status = "NO_FILE" if expected_restore is None else "OK"
            assert restored["status"] == status, (i, restored, where)
            if expected_restore is not None:
                assert restored["count"] == expected_restore, (i, restored, where)
            assert _consistent(restored["count"], restored["text"], restored["wave"],
                               restored["level"]), (i, restored, where)
        if last:
            break
        accepted.update(child.numbers("ACCEPTED"))
        saves = child.numbers("SAVED")
        stats["runs that saved"] += bool(saves)
        temps = list(savedir.glob(f".{store.basename}.*.tmp"))
        assert len(temps) <= 1, (i, temps, where)
        stats["kills during a save"] += len(temps)
        for generation in range(1, 4):  # every generation present is readable
            if store.generation_path(generation).exists():
                decode(store.generation_path(generation).read_bytes())
        values = saved(store.path)  # never unreadable: decode raises if so
        if values is None:
            assert expected_restore is None and not saves, (i, where)
            continue
        count = values[prefix + "COUNT"]
        assert count in accepted, (i, count, where)
        assert not saves or count >= saves[-1], (i, count, saves[-1], where)
        assert restored is None or count >= restored["count"], (i, count, restored, where)
        assert _consistent(count, values[prefix + "TEXT"], values[prefix + "WAVE"],
                           values[prefix + "LEVEL"]), (i, values, where)
        expected_restore = count
        max_count = max(max_count, count)
    duration = time.monotonic() - start
    print(f"\nkill -9 loop: {iterations} kills in {duration:.1f} s {where}; "
          f"{stats['early kills']} during start-up, {stats['kills during a save']} left a "
          f"save half-written, {stats['runs that saved']} runs saved; final value "
          f"{max_count}; every restore OK and consistent")
