"""Helpers of the Docker tests (imported by docker_fixtures.py and the test modules).

Named ``docker_support`` (not ``docker``) so the Docker SDK is never shadowed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import free_ports, poll_until, unique_prefix

REPO = Path(__file__).resolve().parents[2]
PODIOC = str(Path(sys.executable).with_name("podioc"))
BASE_IMAGE = os.environ.get("PODIOC_TEST_BASE_IMAGE", "python:3.12-slim")
TEST_TAG = os.environ.get("PODIOC_TEST_IMAGE_TAG", "podioc-test:latest")
SESSION = uuid.uuid4().hex[:10]
TEST_LABEL = "io.podioc.test"
LOOPBACK_BROADCAST = "127.255.255.255"
SERVING_RE = re.compile(r"serving (\d+) PVs \(prefix '([^']*)'\): CA port (\S+), PVA port (\S+)")


def assert_heartbeat_advances(read: Callable[[], Any], what: str,
                              timeout: float = 10.0) -> None:
    """Read HEARTBEAT (+1 a second) with ``read``, then poll until a read is greater."""
    first = int(read())
    poll_until(lambda: int(read()) > first, timeout=timeout,
               message=f"{what}: HEARTBEAT advancing past {first}")


def podioc_cli(*args: str, env: Mapping[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real ``podioc`` entry point; never raises on a non-zero exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("EPICS_", "PODIOC_"))}
    full_env.update(env or {})
    return subprocess.run([PODIOC, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, check=False, cwd=REPO)


@dataclass
class Endpoint:
    """Ports and prefix of one test IOC, and the settings its clients need."""

    prefix: str
    ca_port: int
    repeater_port: int
    pva_port: int
    pva_bport: int

    @classmethod
    def fresh(cls, prefix: str | None = None) -> Endpoint:
        ca, rep, pva, bport = free_ports(4)
        return cls(prefix or unique_prefix("D"), ca, rep, pva, bport)

    def server_env(self) -> dict[str, str]:
        """The IOC's EPICS_* settings: our ports, beacons only to loopback."""
        return {
            "EPICS_CA_SERVER_PORT": str(self.ca_port),
            "EPICS_CA_REPEATER_PORT": str(self.repeater_port),
            "EPICS_CAS_BEACON_ADDR_LIST": LOOPBACK_BROADCAST,
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_PVA_SERVER_PORT": str(self.pva_port),
            "EPICS_PVA_BROADCAST_PORT": str(self.pva_bport),
            "EPICS_PVAS_BEACON_ADDR_LIST": LOOPBACK_BROADCAST,
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        }

    def ca_client_env(self) -> dict[str, str]:
        """pyepics/libca: search by broadcast on loopback only, no unicast hint."""
        return {
            "EPICS_CA_ADDR_LIST": LOOPBACK_BROADCAST,
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_SERVER_PORT": str(self.ca_port),
            "EPICS_CA_REPEATER_PORT": str(self.repeater_port),
            "EPICS_CA_MAX_ARRAY_BYTES": "1000000",
        }

    def pva_conf(self) -> dict[str, str]:
        """p4p client configuration: broadcast on loopback only."""
        return {
            "EPICS_PVA_ADDR_LIST": LOOPBACK_BROADCAST,
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_BROADCAST_PORT": str(self.pva_bport),
        }


@dataclass
class IocContainer:
    """A running IOC container and its endpoint."""

    container: Any
    endpoint: Endpoint
    served: tuple[int, str, str] = (0, "", "")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.endpoint.prefix

    def logs(self) -> str:
        text: str = self.container.logs(stdout=True, stderr=True).decode(errors="replace")
        return text

    def wait_serving(self, timeout: float = 60.0) -> tuple[int, str, str]:
        """Poll the log for the "serving N PVs ... CA port X, PVA port Y" line."""
        def serving() -> tuple[int, str, str] | None:
            self.container.reload()
            if self.container.status == "exited":
                raise AssertionError(f"IOC container exited:\n{self.logs()[-4000:]}")
            match = SERVING_RE.search(self.logs())
            return (int(match.group(1)), match.group(3), match.group(4)) if match else None

        self.served = poll_until(serving, timeout=timeout, interval=0.1,
                                 message=f"IOC {self.prefix} serving")
        return self.served


