"""Autosave of PVs that startup hooks add: ``attach(defer_unknown=True)`` before the
hooks, ``adopt`` after them (as the runtime does), all before serving."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from podioc import IOC, Device, pv
from podioc.autosave.fileformat import encode
from podioc.autosave.service import Autosave
from podioc.autosave.settings import AutosaveSettings, file_name_for
from podioc.autosave.store import AutosaveStore
from podioc.errors import ConfigError
from podioc.runtime.health import Health

PREFIX = "AD:"


class Sensor(Device):
    offset = pv.float(0.0, limits=(-1, 1), writable=True, autosave=True)


class Discovering(IOC):
    """``declared`` exists from the start; the startup "hook" adds ``sensor`` and LIMIT."""

    declared = pv.float(1.0, writable=True, autosave=True)

    def discover(self, sensors: int = 2) -> None:
        self.add_vector("sensor", [Sensor() for _ in range(sensors)])
        self.add_pv(pv.float(5.0, name="LIMIT", writable=True, autosave=True))


def settings(directory: Path, **kw: Any) -> AutosaveSettings:
    return AutosaveSettings(directory=directory, explicit_directory=True,
                            directory_source="test.yaml", source="test.yaml", debounce=0.01,
                            **kw)


def write_file(directory: Path, values: dict[str, Any]) -> None:
    store = AutosaveStore(directory, file_name_for(PREFIX), 3)
    directory.mkdir(parents=True, exist_ok=True)
    store.acquire()
    store.write(encode(values, {"prefix": PREFIX}))
    store.release()


def start(directory: Path, **kw: Any) -> tuple[Discovering, Autosave]:
    ioc = Discovering(PREFIX)
    autosave = Autosave(settings(directory, **kw))
    autosave.attach(ioc, Health(ioc), defer_unknown=True)
    ioc.discover()
    autosave.adopt(ioc)
    return ioc, autosave


def test_values_of_pvs_added_later_are_restored(tmp_path: Path) -> None:
    write_file(tmp_path, {PREFIX + "DECLARED": 2.0, PREFIX + "LIMIT": 7.5,
                          PREFIX + "SENSOR2:OFFSET": -0.25})
    ioc, autosave = start(tmp_path)
    assert ioc.declared.value == 2.0
    assert ioc.pvs[PREFIX + "LIMIT"].value == 7.5
    assert ioc.pvs[PREFIX + "SENSOR2:OFFSET"].value == -0.25
    assert ioc.pvs[PREFIX + "SENSOR1:OFFSET"].value == 0.0  # not in the file
    assert set(autosave.pvs) == {PREFIX + n for n in ("DECLARED", "LIMIT", "SENSOR1:OFFSET",
                                                      "SENSOR2:OFFSET")}
    assert autosave.status == "OK"
    asyncio.run(autosave.stop())


def test_saved_values_no_pv_claimed_count_as_skipped(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    write_file(tmp_path, {PREFIX + "LIMIT": 7.5, PREFIX + "GONE": 1.0,
                          PREFIX + "SENSOR1:OFFSET": 9.0})  # 9 is outside the limits
    with caplog.at_level(logging.WARNING):
        ioc, autosave = start(tmp_path)
    assert ioc.pvs[PREFIX + "LIMIT"].value == 7.5
    assert ioc.pvs[PREFIX + "SENSOR1:OFFSET"].value == 0.0
    assert autosave.status == "VALUES_SKIPPED"
    assert "AD:GONE = 1.0: this IOC has no such PV" in caplog.text
    assert "AD:SENSOR1:OFFSET" in caplog.text and "outside the limits" in caplog.text
    asyncio.run(autosave.stop())


def test_when_only_added_pvs_are_autosaved_the_store_opens_at_adopt(tmp_path: Path) -> None:
    class OnlyLater(Discovering):
        declared = pv.float(1.0, writable=True)  # not autosaved

    write_file(tmp_path, {PREFIX + "LIMIT": 6.0})
    ioc = OnlyLater(PREFIX)
    autosave = Autosave(settings(tmp_path))
    autosave.attach(ioc, Health(ioc), defer_unknown=True)
    assert not autosave.active
    ioc.discover()
    autosave.adopt(ioc)
    assert autosave.active and ioc.pvs[PREFIX + "LIMIT"].value == 6.0
    assert autosave.status == "OK"
    asyncio.run(autosave.stop())


def test_config_names_of_added_pvs_are_checked_after_the_hooks(tmp_path: Path) -> None:
    _, autosave = start(tmp_path, exclude=("sensor[1].offset",), pvs=())
    assert PREFIX + "SENSOR1:OFFSET" not in autosave.pvs
    asyncio.run(autosave.stop())
    with pytest.raises(ConfigError) as info:
        start(tmp_path / "other", pvs=("sensor[9].offset",))
    assert info.value.field == "autosave.pvs[0]" and "sensor[9].offset" in info.value.problem
    assert "sensor[1].offset" in info.value.fix  # the known attribute paths
