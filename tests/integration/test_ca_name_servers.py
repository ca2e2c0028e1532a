"""A libca client with EPICS_CA_NAME_SERVERS searches over TCP and finds the PVs
(caproto alone drops such a client with a priority-mismatch protocol error)."""

from __future__ import annotations

from collections.abc import Callable

from harness import IocProcess, PyepicsClient

IocFactory = Callable[..., IocProcess]


def test_name_server_client_finds_pvs(ioc_factory: IocFactory) -> None:
    ioc = ioc_factory()
    env = {"EPICS_CA_NAME_SERVERS": f"127.0.0.1:{ioc.ca_port}",
           "EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CA_ADDR_LIST": "",
           "EPICS_CA_SERVER_PORT": str(ioc.ca_port),
           "EPICS_CA_REPEATER_PORT": str(ioc.repeater_port)}
    with PyepicsClient(env) as client:
        for suffix in ("HEARTBEAT", "SETPOINT"):
            assert client.get(ioc.pv(suffix), timeout=10)["value"] is not None, suffix
    assert "priority" not in ioc.log_text()
