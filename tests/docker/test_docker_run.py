"""The image serves the demo IOC over CA and PVA from a locked-down container."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest
from docker_support import Endpoint, assert_heartbeat_advances

from harness import PyepicsClient, poll_until, pva_client

pytestmark = pytest.mark.docker


def ca_value(client: PyepicsClient, pv: str, timeout: float = 10.0) -> Any:
    """Read ``pv`` over CA, waiting up to ``timeout`` for it to connect."""
    return client.get(pv, timeout=timeout)["value"]


def test_demo_serves_ca_and_pva_from_host(ioc_containers: Any) -> None:
    ioc = ioc_containers()
    ep = ioc.endpoint
    assert ioc.served[0] > 10
    assert ioc.served[1:] == (str(ep.ca_port), str(ep.pva_port))
    with PyepicsClient(ep.ca_client_env()) as ca:
        first = ca_value(ca, f"{ep.prefix}HEARTBEAT")
        ca.put(f"{ep.prefix}SETPOINT", 42.5)
        assert ca_value(ca, f"{ep.prefix}SETPOINT") == pytest.approx(42.5)
        poll_until(lambda: ca_value(ca, f"{ep.prefix}HEARTBEAT") > first, timeout=10,
                   message="heartbeat advancing")
        with pva_client(ep.pva_conf()) as pva:
            assert float(pva.get(f"{ep.prefix}SETPOINT", timeout=10)) == pytest.approx(42.5)
            pva.put(f"{ep.prefix}GAIN", 55, timeout=10)
            assert int(pva.get(f"{ep.prefix}GAIN", timeout=10)) == 55
            assert pva.get(f"{ep.prefix}VERSION", timeout=10)
        assert ca_value(ca, f"{ep.prefix}GAIN") == 55


def test_two_iocs_asking_for_the_same_ports_both_serve(ioc_containers: Any) -> None:
    shared = Endpoint.fresh()
    first = ioc_containers(shared)
    second = ioc_containers(Endpoint(f"{shared.prefix[:-1]}B:", shared.ca_port,
                                     shared.repeater_port, shared.pva_port, shared.pva_bport))
    # The first got the ports asked for; the second's TCP listeners moved elsewhere.
    assert first.served[1:] == (str(shared.ca_port), str(shared.pva_port))
    assert second.served[1] != str(shared.ca_port)
    assert second.served[2] != str(shared.pva_port)
    with PyepicsClient(shared.ca_client_env()) as ca:
        for ioc in (first, second):
            assert_heartbeat_advances(partial(ca_value, ca, f"{ioc.prefix}HEARTBEAT"),
                                      f"CA, {ioc.prefix}")
            assert ca_value(ca, f"{ioc.prefix}VERSION")
    with pva_client(shared.pva_conf()) as pva:
        for ioc in (first, second):
            assert_heartbeat_advances(partial(pva.get, f"{ioc.prefix}HEARTBEAT", timeout=10),
                                      f"PVA, {ioc.prefix}")


def test_docker_stop_exits_zero_within_grace_period(ioc_containers: Any) -> None:
    ioc = ioc_containers()
    grace = 20
    started = time.monotonic()
    ioc.container.stop(timeout=grace)
    elapsed = time.monotonic() - started
    status = ioc.container.wait(timeout=30)
    assert status["StatusCode"] == 0, ioc.logs()[-3000:]
    assert elapsed < grace / 2, f"stop took {elapsed:.1f} s (SIGKILL after {grace} s)"
    assert "SIGTERM" in ioc.logs()


def test_runs_non_root_on_read_only_root_fs(engine: Any, ioc_containers: Any) -> None:
    ioc = ioc_containers()
    attrs = engine.api.inspect_container(ioc.container.id)
    assert attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert attrs["Config"]["User"] == "10001:10001"

    def sh(script: str) -> tuple[int, str]:
        code, out = ioc.container.exec_run(["sh", "-c", script])
        return code, out.decode(errors="replace")

    assert sh("id -u; id -g") == (0, "10001\n10001\n")
    code, out = sh("touch /opt/podioc/x")
    assert code != 0 and "Read-only file system" in out
    assert sh("touch /iocs/x")[0] != 0
    assert sh("touch /tmp/x && touch /var/lib/podioc/autosave/x")[0] == 0


def test_healthcheck_turns_healthy(engine: Any, ioc_containers: Any,
                                   test_image: str) -> None:
    image_check = engine.images.get(test_image).attrs["Config"]["Healthcheck"]["Test"]
    assert image_check[:3] == ["CMD", "podioc", "probe"]
    # The image's own check command, run every second instead of every 15 s.
    ioc = ioc_containers(healthcheck={"test": image_check, "interval": 1_000_000_000,
                                      "timeout": 10_000_000_000, "retries": 3,
                                      "start_period": 30_000_000_000})

    def health() -> str | None:
        state = engine.api.inspect_container(ioc.container.id)["State"]
        status = state["Health"]["Status"]
        if status == "unhealthy":
            raise AssertionError(f"unhealthy: {state['Health']['Log'][-1:]}")
        return status if status == "healthy" else None

    poll_until(health, timeout=60, interval=0.2, message="container healthy")
    log = engine.api.inspect_container(ioc.container.id)["State"]["Health"]["Log"]
    assert log[-1]["ExitCode"] == 0 and "alive" in log[-1]["Output"]
