"""``podioc run`` with a broken config or IOC: non-zero exit, a message naming file and
field (or file:line for IOC code), and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import isolated_env, podioc
from harness.testiocs import ALLKINDS

GOOD = f"ioc: '{ALLKINDS}:AllKinds'\nprefix: 'OK:'\n"

#: (id, config text, expected parts of the message besides the file name).
CONFIG_CASES = [
    ("bad-yaml", "ioc: x.py\nprefix: [unclosed\n", ["line 3", "invalid YAML"]),
    ("not-a-mapping", "- just\n- a list\n", ["<top level>", "expected a mapping"]),
    ("unknown-key", GOOD + "bogus: 1\n", ["bogus", "unknown setting"]),
    ("missing-ioc", "prefix: 'A:'\n", ["ioc", "missing"]),
    ("bad-prefix", f"ioc: '{ALLKINDS}'\nprefix: 'has space:'\n", ["prefix", "'has space:'"]),
    ("unknown-arg", GOOD + "args: {nope: 1}\n", ["args.nope", "AllKinds takes no argument"]),
    ("bad-protocols", GOOD + "protocols: [ca, http]\n", ["protocols"]),
    ("bad-health", GOOD + "health: maybe\n", ["health"]),
    ("bad-epics-name", GOOD + "epics: {CA_PORT: 5064}\n", ["epics.CA_PORT", "EPICS_"]),
    ("bad-epics-port", GOOD + "epics: {EPICS_CAS_BEACON_PORT: 99999}\n",
     ["EPICS_CAS_BEACON_PORT", "not a port number"]),
    ("missing-ioc-file", "ioc: nothere.py\nprefix: 'A:'\n", ["ioc", "does not exist"]),
    ("missing-class", f"ioc: '{ALLKINDS}:Nope'\nprefix: 'A:'\n",
     ["ioc", "no IOC class 'Nope'", "AllKinds"]),
    ("bad-version", GOOD + "version: 7\n", ["version", "unsupported"]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_fails_cleanly(tmp_path: Path, text: str, expected: list[str]) -> None:
    config = tmp_path / "instance.yaml"
    config.write_text(text)
    result = podioc(["run", str(config)], timeout=30)
    assert result.returncode != 0
    assert "Traceback" not in result.output
    assert str(config) in result.stderr
    for part in expected:
        assert part in result.stderr, result.stderr
    assert "serving" not in result.output


def test_missing_config_file(tmp_path: Path) -> None:
    result = podioc(["run", str(tmp_path / "absent.yaml")])
    assert result.returncode != 0
    assert "absent.yaml" in result.stderr and "cannot be read" in result.stderr
    assert "Traceback" not in result.output


def test_bad_prefix_option(tmp_path: Path) -> None:
    result = podioc(["run", str(ALLKINDS), "--prefix", "no spaces allowed"])
    assert result.returncode != 0
    assert "--prefix" in result.stderr and "'no spaces allowed'" in result.stderr
    assert "Traceback" not in result.output


def test_bad_epics_environment() -> None:
    env = isolated_env()
    env["EPICS_CA_SERVER_PORT"] = "abc"
    result = podioc(["run", str(ALLKINDS), "--prefix", "E:"], env=env)
    assert result.returncode != 0
    assert "EPICS_CA_SERVER_PORT" in result.stderr and "'abc'" in result.stderr
    assert "Traceback" not in result.output


def test_a_podioc_flag_that_is_not_yes_or_no_stops_the_ioc_before_serving() -> None:
    """Before, any value but a "yes" word silently turned the CA search fan-out off."""
    env = isolated_env()
    env["PODIOC_CA_SEARCH_FANOUT"] = "enable"
    result = podioc(["run", str(ALLKINDS), "--prefix", "F:"], env=env, timeout=30)
    assert result.returncode != 0
    assert "PODIOC_CA_SEARCH_FANOUT: 'enable' is not YES or NO" in result.stderr
    assert "serving" not in result.output and "Traceback" not in result.output


IOC_DEFINITION_CASES = [
    ("contradictory-limits", "x = pv.float(0.0, limits=(10, 1))",
     "limits=(10.0, 1.0) must be (low, high) with low < high"),
    ("alarm-order", "x = pv.float(0.0, alarm=pv.Alarm(low=5, lolo=10))",
     "alarm limit lolo=10 is above low=5"),
    ("initial-outside", "x = pv.int(200, limits=(0, 100))", "outside limits"),
    ("scan-not-async", "@scan(period=1.0)\n    def tick(self) -> None:\n        pass",
     "scan 'tick' must be 'async def'"),
    ("hook-signature", "@startup\n    async def begin(self, extra):\n        pass",
     "expected (self)"),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in IOC_DEFINITION_CASES],
                         ids=[c[0] for c in IOC_DEFINITION_CASES])
def test_ioc_definition_error_names_file_and_line(tmp_path: Path, body: str,
                                                  message: str) -> None:
    source = tmp_path / "broken_ioc.py"
    source.write_text("from podioc import IOC, pv, scan, startup\n\n\n"
                      "class Broken(IOC):\n"
                      "    ok = pv.float(1.0)\n"
                      f"    {body}\n")
    result = podioc(["run", str(source), "--prefix", "B:"])
    assert result.returncode != 0
    assert f"{source}:6" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_describe_reports_every_typo_at_once(tmp_path: Path) -> None:
    """Three typos in three blocks: one run of the real CLI names all three."""
    config = tmp_path / "typos.yaml"
    config.write_text(GOOD + "autosave: {debouce: 1}\ndeploy: {namspace: bl01}\n"
                             "access: {fiel: rules.acf}\n")
    result = podioc(["describe", str(config)], timeout=30)
    assert result.returncode != 0
    assert "Traceback" not in result.output
    lines = [line.removeprefix("Error: ") for line in result.stderr.splitlines()]
    for field, suggestion in (("autosave.debouce", "debounce"), ("deploy.namspace", "namespace"),
                              ("access.fiel", "file")):
        assert any(line.startswith(f"{config}: {field}: unknown setting; did you mean "
                                   f"'{suggestion}'? (known settings: ") for line in lines), \
            result.stderr
    assert result.stdout == ""  # nothing was described


def test_schema_command_prints_the_json_schema() -> None:
    result = podioc(["schema"], timeout=30)
    assert result.returncode == 0, result.stderr
    assert '"title": "podioc instance config"' in result.stdout
