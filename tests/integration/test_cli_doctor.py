"""``podioc doctor CONFIG --json``: the config's epics: block and the environment
give the settings it reports; exit 1 exactly when the verdict is FAIL."""

from __future__ import annotations

import json

from harness import podioc
from harness.testiocs import DEMO_YAML


def test_doctor_command_with_a_config() -> None:
    result = podioc(["doctor", str(DEMO_YAML), "--json"], env={})  # no EPICS_* at all
    doc = json.loads(result.stdout)
    assert result.returncode == (1 if doc["verdict"] == "FAIL" else 0), result.output
    assert doc["settings"]["ca_server_port"] == 5064
    assert {c["topic"] for c in doc["checks"]} >= {"Network interfaces",
                                                   "Channel Access server", "PVAccess server"}
