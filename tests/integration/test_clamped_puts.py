"""``on_limit="clamp"``: an out-of-limit put succeeds and stores the nearest limit,
as an ao record with DRVH/DRVL does (EPICS base's caput; p4p); the default refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from p4p.client.thread import RemoteError

from harness import IocProcess, pva_client
from harness.epicsbase import epics_base
from harness.testiocs import TESTS

CLAMPED = TESTS / "integration" / "iocs" / "clamped.py"


@pytest.fixture(scope="module")
def clamped(module_ioc_factory: Any) -> IocProcess:
    return module_ioc_factory(f"{CLAMPED}:Clamped", name="clamped")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pva(clamped: IocProcess) -> Iterator[Any]:
    with pva_client(clamped) as ctx:
        yield ctx


def caput_caget(ioc: IocProcess, name: str, *values: str) -> str:
    base = epics_base()
    args = ["-a", name, str(len(values)), *values] if len(values) > 1 else [name, *values]
    put = base.run("caput", "-c", "-w", "5", *[ioc.pv(a) if a == name else a for a in args],
                   target=ioc)
    assert put.returncode == 0, put.output
    got = base.run("caget", "-t", ioc.pv(name), target=ioc)
    assert got.returncode == 0, got.output
    return got.stdout.strip()


@pytest.mark.parametrize(("name", "put", "stored"), [
    ("SPEED", "25", "10"), ("SPEED", "-1e9", "-10"), ("SPEED", "3.5", "3.5"),
    ("COUNT", "500", "100"), ("COUNT", "-7", "0"),
])
def test_caput_outside_the_limits_stores_the_limit(clamped: IocProcess, name: str, put: str,
                                                   stored: str) -> None:
    assert float(caput_caget(clamped, name, put)) == float(stored)


def test_each_array_element_is_clamped(clamped: IocProcess) -> None:
    text = caput_caget(clamped, "WF", "0.5", "-3", "1", "9")
    assert [float(x) for x in text.split()[1:]] == [0.5, -1.0, 1.0, 1.0]


def test_pva_put_is_clamped_too(clamped: IocProcess, pva: Any) -> None:
    pva.put(clamped.pv("SPEED"), 99.0, timeout=10)
    assert float(pva.get(clamped.pv("SPEED"), timeout=10)) == 10.0


def test_the_default_still_refuses(clamped: IocProcess, pva: Any) -> None:
    with pytest.raises(RemoteError, match=r"outside the limits -10 \.\. 10"):
        pva.put(clamped.pv("STRICT"), 11.0, timeout=10)
    assert float(pva.get(clamped.pv("STRICT"), timeout=10)) == 0.0
