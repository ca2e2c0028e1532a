"""``podioc probe PREFIX``: exit 0 for a live IOC, exit 1 (with a message, within its
timeout) for an absent, stopped or frozen one. The probe gets the same EPICS_* server
settings as the IOC (as it would inside the IOC's container)."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable

import pytest

from harness import IocProcess, podioc, unique_prefix
from harness.testiocs import ALLKINDS

IocFactory = Callable[..., IocProcess]

#: Interpreter start-up and imports on a loaded machine, on top of --timeout.
OVERHEAD = 10.0


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_alive(allkinds: IocProcess, protocol: str) -> None:
    result = podioc(["probe", allkinds.prefix, "--protocol", protocol],
                    env=allkinds.server_env())
    assert result.returncode == 0, result.output
    match = re.search(rf"{re.escape(allkinds.prefix)} alive \(heartbeat (\d+) -> (\d+)\) "
                      rf"over {protocol.upper()} in [\d.]+ s", result.stdout)
    assert match, result.stdout
    assert int(match[2]) > int(match[1])


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_ready(allkinds: IocProcess, protocol: str) -> None:
    result = podioc(["probe", allkinds.prefix, "--protocol", protocol, "--ready"],
                    env=allkinds.server_env())
    assert result.returncode == 0, result.output
    assert f"{allkinds.prefix} ready over {protocol.upper()}" in result.stdout


def test_quiet(allkinds: IocProcess) -> None:
    result = podioc(["probe", allkinds.prefix, "--ready", "-q"], env=allkinds.server_env())
    assert (result.returncode, result.stdout) == (0, "")


def test_settings_from_environment_variables(allkinds: IocProcess) -> None:
    env = dict(allkinds.server_env(), PODIOC_PROBE_PROTOCOL="pva", PODIOC_PROBE_READY="1",
               PODIOC_PREFIX=allkinds.prefix)
    result = podioc(["probe"], env=env)
    assert result.returncode == 0, result.output
    assert "ready over PVA" in result.stdout


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_absent_prefix_fails_within_timeout(allkinds: IocProcess, protocol: str) -> None:
    absent = unique_prefix("ABSENT")
    result = podioc(["probe", absent, "--protocol", protocol, "--timeout", "2"],
                    env=allkinds.server_env())
    assert result.returncode == 1
    assert f"probe failed: {absent}HEARTBEAT not readable over {protocol.upper()}" in (
        result.stderr)
    assert "Traceback" not in result.output
    assert result.seconds < 2 + OVERHEAD


def test_other_server_settings_do_not_find_the_ioc(allkinds: IocProcess) -> None:
    """The probe searches where *its* EPICS_* settings say the IOC listens."""
    env = allkinds.server_env()
    env["EPICS_CA_SERVER_PORT"] = str(allkinds.repeater_port)  # nobody serves there
    result = podioc(["probe", allkinds.prefix, "--ready", "--timeout", "1"], env=env)
    assert result.returncode == 1 and "not readable over CA" in result.stderr


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_stopped_ioc_fails(ioc_factory: IocFactory, protocol: str) -> None:
    ioc = ioc_factory(ALLKINDS)
    env = ioc.server_env()
    assert ioc.stop() == 0
    result = podioc(["probe", ioc.prefix, "--protocol", protocol, "--timeout", "2"], env=env)
    assert result.returncode == 1 and "probe failed" in result.stderr
    assert result.seconds < 2 + OVERHEAD


def test_frozen_ioc_fails_then_recovers(ioc_factory: IocFactory) -> None:
    """SIGSTOP freezes the whole process (the kernel still accepts TCP): not live."""
    ioc = ioc_factory(ALLKINDS)
    ioc.send_signal(signal.SIGSTOP)
    try:
        result = podioc(["probe", ioc.prefix, "--timeout", "2"], env=ioc.server_env())
        assert result.returncode == 1 and "probe failed" in result.stderr
        assert result.seconds < 2 + OVERHEAD
    finally:
        ioc.send_signal(signal.SIGCONT)
    result = podioc(["probe", ioc.prefix, "--timeout", "5"], env=ioc.server_env())
    assert result.returncode == 0, result.output


def test_probe_leaves_no_process_holding_its_output(allkinds: IocProcess) -> None:
    """Regression: caproto's sync client spawned a caproto-repeater that outlived the
    probe and kept its stdout/stderr open, so whoever waits for the probe's output (a
    Docker HEALTHCHECK, ``subprocess.run``) hung until its own timeout."""
    result = podioc(["probe", allkinds.prefix, "--ready"], env=allkinds.server_env(),
                    timeout=20)
    assert result.returncode == 0, result.output


def test_alive_probe_reads_over_one_circuit(allkinds: IocProcess) -> None:
    """The probe searches once and keeps one circuit for its repeated reads (caproto's
    sync client searched from a fresh SO_REUSEADDR socket and opened a circuit per
    read: about once in 30,000 reads that socket got the IOC's own UDP port, the
    search reply went back to the IOC and a liveness probe failed)."""
    since = len(allkinds.log_text().encode())
    result = podioc(["probe", allkinds.prefix, "--timeout", "5"], env=allkinds.server_env())
    assert result.returncode == 0, result.output
    log = allkinds.log_text(since)
    assert log.count("Connected to new client") == 1, log
