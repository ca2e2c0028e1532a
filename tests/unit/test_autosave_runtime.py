"""Autosave's run-time side in-process: selection, restore rules, status, saving.

No servers and no network: an IOC object, a tmp directory and an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from podioc import IOC, PutRefused, pv
from podioc.autosave.fileformat import decode, encode
from podioc.autosave.service import Autosave
from podioc.autosave.settings import AutosaveSettings, file_name_for
from podioc.autosave.store import AutosaveStore
from podioc.errors import ConfigError
from podioc.model import Severity
from podioc.runtime.health import HEALTH_SPECS, Health

PREFIX = "U:"


class Device(IOC):
    level = pv.float(1.0, limits=(0, 100), writable=True, autosave=True)
    count = pv.int(0, writable=True, autosave=True)
    mode = pv.enum(["OFF", "HEAT", "COOL"], "OFF", writable=True, autosave=True)
    enabled = pv.bool(False, writable=True, autosave=True)
    label = pv.string("x", writable=True, autosave=True)
    table = pv.waveform(4, dtype="int16", writable=True, autosave=True)
    other = pv.float(0.0, writable=True)
    readback = pv.float(0.0)

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self.validated: list[Any] = []

    @level.validator
    async def _check(self, value: float) -> None:
        self.validated.append(value)
        if value > 50:
            raise PutRefused("level above 50 needs the interlock")


NAMES = {a: PREFIX + a.upper() for a in ("level", "count", "mode", "enabled", "label", "table")}


def settings(directory: Path, **kw: Any) -> AutosaveSettings:
    kw.setdefault("debounce", 0.01)
    return AutosaveSettings(directory=directory, explicit_directory=True,
                            directory_source="test.yaml", source="test.yaml", **kw)


def store_for(directory: Path, generations: int = 3) -> AutosaveStore:
    return AutosaveStore(directory, file_name_for(PREFIX), generations)


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def attach(autosave: Autosave, ioc: IOC) -> None:
    """As the runtime does: health PVs first, then autosave adds its status PVs to them."""
    autosave.attach(ioc, Health(ioc))


def started(directory: Path, **kw: Any) -> tuple[Device, Autosave]:
    ioc = Device(PREFIX)
    autosave = Autosave(settings(directory, **kw))
    attach(autosave, ioc)
    return ioc, autosave


def status_of(ioc: Device) -> tuple[str, Severity]:
    live = ioc.pvs[PREFIX + "AUTOSAVE_STATUS"]
    return live.value, live.alarm.severity


async def saved_once(autosave: Autosave, timeout: float = 5.0) -> dict[str, Any]:
    """Wait for the writer's next save (by its hook)."""
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def hook(values: dict[str, Any]) -> None:
        if not done.done():
            done.set_result(values)

    autosave.saved_hooks.append(hook)
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        autosave.saved_hooks.remove(hook)


# -- selection -------------------------------------------------------------------
def test_selection_declared_plus_listed_minus_excluded(tmp_path: Path) -> None:
    async def body() -> None:
        _, autosave = started(tmp_path, pvs=("other", "READBACK"), exclude=("U:MODE", "count"))
        assert set(autosave.pvs) == {NAMES["level"], NAMES["enabled"], NAMES["label"],
                                     NAMES["table"], "U:OTHER", "U:READBACK"}
        await autosave.stop()
    run(body)


@pytest.mark.parametrize("key", ["pvs", "exclude"])
def test_unknown_names_are_config_errors(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        attach(Autosave(settings(tmp_path, **{key: ("level", "nope")})), Device(PREFIX))
    assert info.value.field == f"autosave.{key}[1]" and info.value.source == "test.yaml"
    assert "nope" in info.value.problem and "level" in info.value.fix


# -- directory ---------------------------------------------------------------------
def test_unusable_default_directory_disables_with_warning(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    ioc = Device(PREFIX)
    autosave = Autosave(AutosaveSettings(directory=tmp_path / "missing"))
    with caplog.at_level(logging.WARNING):
        attach(autosave, ioc)
    assert not autosave.active and autosave.status == "DISABLED"
    assert status_of(ioc) == ("DISABLED", Severity.MINOR)
    assert "PODIOC_AUTOSAVE_DIR" in caplog.text and "missing" in caplog.text
    assert not (tmp_path / "missing").exists()


def test_unusable_explicit_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as info:
        attach(Autosave(settings(tmp_path / "file" / "sub")), Device(PREFIX))
    assert info.value.field == "autosave.directory" and "not usable" in info.value.problem


def test_explicit_directory_is_created(tmp_path: Path) -> None:
    async def body() -> None:
        _, autosave = started(tmp_path / "a" / "b")
        await autosave.stop()
    run(body)
    assert (tmp_path / "a" / "b" / file_name_for(PREFIX)).exists()


def test_second_user_of_the_same_files_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        _, first = started(tmp_path)
        with pytest.raises(ConfigError, match="in use by another running IOC"):
            started(tmp_path)
        await first.stop()
    run(body)


def test_disabled_by_config_and_nothing_to_save(tmp_path: Path) -> None:
    ioc = Device(PREFIX)
    autosave = Autosave(settings(tmp_path, enabled=False))
    attach(autosave, ioc)
    assert status_of(ioc) == ("DISABLED", Severity.NO_ALARM) and not list(tmp_path.iterdir())

    class Plain(IOC):
        x = pv.float(0.0, writable=True)

    plain = Plain("P:")
    attach(Autosave(settings(tmp_path)), plain)
    assert plain.pvs["P:AUTOSAVE_STATUS"].value == "DISABLED"
    assert not list(tmp_path.iterdir())


def test_status_pvs_added_to_health_after_its_own(tmp_path: Path) -> None:
    """Autosave adds its status PVs itself, served right after the health PVs;
    PV_COUNT counts them."""
    async def body() -> None:
        ioc = Device(PREFIX)
        health = Health(ioc)
        autosave = Autosave(settings(tmp_path))
        autosave.attach(ioc, health)
        keys = [*HEALTH_SPECS, "AUTOSAVE_STATUS", "AUTOSAVE_LAST_SAVE"]
        assert list(ioc.pvs)[-len(keys):] == [PREFIX + key for key in keys]
        assert list(health.pvs) == keys
        assert health.pvs["AUTOSAVE_STATUS"] is ioc.pvs[PREFIX + "AUTOSAVE_STATUS"]
        assert ioc.pvs[PREFIX + "PV_COUNT"].value == len(ioc.pvs)
        await autosave.stop()
    run(body)


def test_no_status_pvs_without_health(tmp_path: Path) -> None:
    async def body() -> None:
        ioc = Device(PREFIX)
        autosave = Autosave(settings(tmp_path))
        autosave.attach(ioc)  # health PVs off: no status PVs, saving works the same
        assert not any("AUTOSAVE" in name for name in ioc.pvs)
        assert await autosave.save()
        await autosave.stop()
    run(body)


# -- restore -------------------------------------------------------------------------
def test_first_start_then_round_trip(tmp_path: Path) -> None:
    async def first() -> None:
        ioc, autosave = started(tmp_path)
        assert status_of(ioc) == ("NO_FILE", Severity.NO_ALARM)
        assert ioc.pvs[PREFIX + "AUTOSAVE_LAST_SAVE"].value == ""
        task = asyncio.create_task(autosave.run())
        await saved_once(autosave)  # the initial file
        await ioc.level.put(12.5)
        await ioc.count.put(-7)
        await ioc.mode.put("COOL")
        await ioc.enabled.put(1)
        await ioc.label.put("hello \"world\"\n")
        await ioc.table.put([1, -2, 3])
        values = await saved_once(autosave)
        assert values[NAMES["mode"]] == "COOL" and values[NAMES["table"]] == [1, -2, 3]
        assert ioc.pvs[PREFIX + "AUTOSAVE_LAST_SAVE"].value != ""
        await autosave.stop()
        task.cancel()

    async def second() -> None:
        ioc, autosave = started(tmp_path)
        assert status_of(ioc) == ("OK", Severity.NO_ALARM)
        assert (ioc.level.value, ioc.count.value, ioc.mode.value, ioc.enabled.value,
                ioc.label.value) == (12.5, -7, "COOL", True, "hello \"world\"\n")
        assert ioc.table.value.dtype == np.int16 and list(ioc.table.value) == [1, -2, 3]
        assert ioc.validated == []  # restore never calls validators
        assert ioc.pvs[PREFIX + "AUTOSAVE_LAST_SAVE"].value != ""
        assert not await autosave.save()  # nothing changed: no rewrite
        await autosave.stop()

    run(first)
    run(second)
    assert not store_for(tmp_path).generation_path(3).exists()


def test_invalid_saved_values_are_skipped_with_warnings(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    store_for(tmp_path).write(encode({
        NAMES["level"]: 150.0,          # outside the limits 0..100
        NAMES["count"]: 2.5,            # not an integer
        NAMES["mode"]: "TURBO",         # not a state
        NAMES["enabled"]: True,
        NAMES["label"]: "y" * 60,       # too long for a CA string
        NAMES["table"]: [1, 2, 3, 4, 5],  # longer than 4
        "U:GONE": 3,                    # no such PV any more
        "U:OTHER": 9.0,                 # exists, no longer autosaved
    }, {"saved": "2024-01-01T00:00:00.000000Z"}))

    async def body() -> None:
        with caplog.at_level(logging.INFO):
            ioc, autosave = started(tmp_path)
        assert status_of(ioc) == ("VALUES_SKIPPED", Severity.MINOR)
        assert (ioc.level.value, ioc.count.value, ioc.mode.value, ioc.label.value) == (
            1.0, 0, "OFF", "x")
        assert ioc.enabled.value is True and ioc.other.value == 0.0
        assert ioc.pvs[PREFIX + "AUTOSAVE_LAST_SAVE"].value == "2024-01-01 00:00:00"
        await autosave.save()
        await autosave.stop()

    run(body)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expect = [("U:LEVEL", "150.0", "outside the limits 0 .. 100"),
              ("U:COUNT", "2.5", "not an integer"),
              ("U:MODE", "'TURBO'", "not one of"),
              ("U:LABEL", "'yyyy", "longer than"),
              ("U:TABLE", "[1, 2, 3, 4, 5]", "exceeds the maximum"),
              ("U:GONE", "3", "no such PV")]
    for name, value, reason in expect:
        assert any(f"{name} = {value}" in w and reason in w for w in warnings), (name, warnings)
    assert any("VALUES_SKIPPED" in w and "6 skipped" in w for w in warnings)
    assert not any("U:OTHER =" in w for w in warnings)
    # the next save holds the values actually in use
    assert decode(store_for(tmp_path).path.read_bytes()).values[NAMES["level"]] == 1.0


def test_corrupt_current_falls_back_and_is_quarantined(tmp_path: Path) -> None:
    store = store_for(tmp_path)
    store.write(encode({NAMES["count"]: 1}))
    store.write(encode({NAMES["count"]: 2}))
    data = store.path.read_bytes()
    store.path.write_bytes(data[:-10])

    async def body() -> None:
        ioc, autosave = started(tmp_path)
        assert ioc.count.value == 1
        assert status_of(ioc) == ("RESTORED_FROM_BACKUP", Severity.MINOR)
        assert (tmp_path / (store.basename + ".bad")).read_bytes() == data[:-10]
        assert await autosave.save()  # a fresh current file right away
        await autosave.stop()

    run(body)
    assert decode(store.path.read_bytes()).values[NAMES["count"]] == 1
    # the good backup moved up one generation (the corrupt file never enters the chain)
    assert decode(store.generation_path(2).read_bytes()).values[NAMES["count"]] == 1
    assert not store.generation_path(1).exists()


def test_nothing_readable_is_restore_failed(tmp_path: Path) -> None:
    store = store_for(tmp_path)
    store.write(encode({NAMES["count"]: 1}))
    store.write(encode({NAMES["count"]: 2}))
    for g in (0, 1):
        store.generation_path(g).write_bytes(b"garbage\n")

    async def body() -> None:
        ioc, autosave = started(tmp_path)
        assert ioc.count.value == 0
        assert status_of(ioc) == ("RESTORE_FAILED", Severity.MAJOR)
        await autosave.stop()

    run(body)


# -- saving ---------------------------------------------------------------------------
def test_save_failure_is_shown_and_recovers(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        ioc, autosave = started(tmp_path)
        assert await autosave.save()
        assert autosave.store is not None
        real_write = autosave.store.write

        def broken(_data: bytes) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(autosave.store, "write", broken)
        await ioc.count.put(5)
        assert not await autosave.save()
        assert status_of(ioc) == ("SAVE_FAILED", Severity.MAJOR)
        monkeypatch.setattr(autosave.store, "write", real_write)
        assert await autosave.save()
        assert status_of(ioc) == ("NO_FILE", Severity.NO_ALARM)
        await autosave.stop()

    run(body)
    assert decode(store_for(tmp_path).path.read_bytes()).values[NAMES["count"]] == 5


def test_periodic_save_recreates_a_deleted_file(tmp_path: Path) -> None:
    async def body() -> None:
        _, autosave = started(tmp_path, period=0.05, debounce=0.0)
        task = asyncio.create_task(autosave.run())
        await saved_once(autosave)
        assert autosave.store is not None
        autosave.store.path.unlink()
        await saved_once(autosave)
        assert autosave.store.path.exists()
        await autosave.stop()
        task.cancel()

    run(body)


def test_stop_flushes_without_waiting_for_the_debounce(tmp_path: Path) -> None:
    async def body() -> None:
        ioc, autosave = started(tmp_path, debounce=60.0, period=600.0)
        task = asyncio.create_task(autosave.run())
        await ioc.level.put(33.0)
        t0 = time.monotonic()
        await autosave.stop()
        assert time.monotonic() - t0 < 1.0
        await ioc.level.put(44.0)  # after stop: not watched any more
        task.cancel()

    run(body)
    assert decode(store_for(tmp_path).path.read_bytes()).values[NAMES["level"]] == 33.0


def test_debounce_coalesces_and_bounds_latency(tmp_path: Path) -> None:
    """A PV changing continuously is still saved about every ``debounce`` s."""
    async def body() -> list[float]:
        ioc, autosave = started(tmp_path, debounce=0.05)
        task = asyncio.create_task(autosave.run())
        await saved_once(autosave)
        saves: list[float] = []
        autosave.saved_hooks.append(lambda _v: saves.append(time.monotonic()))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:
            await ioc.count.put(ioc.count.value + 1)
            await asyncio.sleep(0.002)
        await autosave.stop()
        task.cancel()
        return saves

    saves = run(body)
    assert 5 <= len(saves) <= 12, saves
    gaps = np.diff(saves)
    assert gaps.max() < 0.2, gaps
