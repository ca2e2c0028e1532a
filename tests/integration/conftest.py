"""Fixtures for integration tests: real ``podioc run`` processes and real clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness import IocProcess, PyepicsClient, caproto_client, pva_client
from harness.testiocs import ALLKINDS

IocFactory = Callable[..., IocProcess]


@pytest.fixture(scope="module")
def allkinds(module_ioc_factory: IocFactory) -> IocProcess:
    """One AllKinds IOC for the whole module (unique prefix, free ports)."""
    return module_ioc_factory(ALLKINDS, name="allkinds")


@pytest.fixture(scope="module")
def pyepics(allkinds: IocProcess) -> Iterator[PyepicsClient]:
    """A pyepics worker process connected to the module's AllKinds IOC."""
    with PyepicsClient(allkinds) as client:
        yield client


@pytest.fixture(scope="module")
def ca(allkinds: IocProcess) -> Iterator[Any]:
    """A caproto threading Context for the module's AllKinds IOC."""
    with caproto_client(allkinds) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def pva(allkinds: IocProcess) -> Iterator[Any]:
    """A p4p Context (Normative Types unwrapped) for the module's AllKinds IOC."""
    with pva_client(allkinds) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def pva_raw(allkinds: IocProcess) -> Iterator[Any]:
    """A p4p Context returning raw Values (all fields) for the AllKinds IOC."""
    with pva_client(allkinds, nt=False) as ctx:
        yield ctx
