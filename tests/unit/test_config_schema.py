"""The instance-config schema: one declaration, every problem at once, the JSON Schema."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from podioc import ConfigError
from podioc import config as cfgmod
from podioc.autosave.settings import AutosaveSettings
from podioc.cli import cli
from podioc.deploy.settings import load_settings
from podioc.putlog import PutLogSettings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "podioc-instance.schema.json"
MODELINE = "# yaml-language-server: $schema="


def printed_schema() -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def instance_configs() -> list[Path]:
    """Every instance config in the repository (iocs/, and integration tests' if any)."""
    found = [*ROOT.glob("iocs/**/*.y*ml"), *ROOT.glob("tests/integration/**/*.y*ml")]
    return sorted(p for p in found if p.suffix in (".yaml", ".yml"))


# -- podioc schema --------------------------------------------------------------------------


def test_schema_is_a_valid_json_schema_with_a_description_for_every_field() -> None:
    schema = printed_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["ioc", "prefix"]
    models = [schema, *schema["$defs"].values()]
    for model in models:
        assert model["additionalProperties"] is False, model["title"]
        for name, prop in model["properties"].items():
            assert prop.get("description"), (model["title"], name)
            # a block's title is its model's ($defs), which the loop checks too
            assert prop.get("title") or "$ref" in json.dumps(prop), (model["title"], name)
    top = set(schema["properties"])
    assert top == {"version", "ioc", "prefix", "description", "args", "protocols", "health",
                   "epics", "deploy", "autosave", "access", "pvi", "put_log"}


def test_committed_schema_file_is_what_podioc_schema_prints() -> None:
    assert SCHEMA_FILE.is_file(), "regenerate: podioc schema > podioc-instance.schema.json"
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == printed_schema(), (
        "podioc-instance.schema.json differs from `podioc schema`; regenerate it from the "
        "repository root: podioc schema > podioc-instance.schema.json")


@pytest.mark.parametrize("path", instance_configs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_configs_validate_against_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), printed_schema())
    cfgmod.load(path)  # and podioc agrees
    first = path.read_text().splitlines()[0]
    assert first.startswith(MODELINE), f"{path} should start with {MODELINE}..."
    assert (path.parent / first.removeprefix(MODELINE)).resolve() == SCHEMA_FILE


def test_there_are_repository_configs() -> None:
    assert instance_configs()


FULL = {
    "version": 1, "ioc": "ioc.py:Dev", "prefix": "BL01:T:", "description": "d",
    "args": {"gain": 2}, "protocols": ["ca", "pva"], "health": False,
    "epics": {"EPICS_CA_SERVER_PORT": 5070, "EPICS_CAS_INTF_ADDR_LIST": "10.0.0.1",
              "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO", "EPICS_CA_CONN_TMO": 30.0},
    "deploy": {"namespace": "bl01", "image": "reg/x@sha256:" + "a" * 64,
               "image_pull_policy": "IfNotPresent", "code_dir": "/iocs/x/",
               "beamline": "bl01", "node_selector": {"podioc.io/beamline": "bl01"},
               "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 5}],
               "part_of": "bl01", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
               "tmp_size": "16Mi", "autosave_size": "1Gi", "autosave_storage_class": "fast",
               "autosave_claim": "", "termination_grace_period": 45,
               "priority_class": "high", "env": {"PODIOC_LOG_LEVEL": "DEBUG", "N": 3}},
    "autosave": {"enabled": True, "directory": "./sav", "file": "x.sav", "debounce": 0,
                 "period": 2.5, "generations": 0, "pvs": ["a"], "exclude": ["B"]},
    "access": {"rules": "ASG(DEFAULT) { RULE(1, READ) }", "groups": {"DEFAULT": ["a"],
                                                                      "X": "b"}},
    "put_log": {"enabled": True, "stdout": False, "file": "log/puts.jsonl",
                "max_bytes": 2048, "backups": 2, "tcp": "[::1]:7011", "coalesce": 0.5,
                "queue": 100},
}


def test_a_config_using_every_key_is_valid_for_both() -> None:
    jsonschema.validate(FULL, printed_schema())
    cfg = cfgmod.parse(FULL, "full.yaml", Path("/cfg"))
    settings = load_settings(cfg)
    assert settings.resources["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert settings.tolerations == ({"key": "k", "operator": "Exists", "effect": "NoExecute",
                                     "tolerationSeconds": 5},)
    assert settings.env == {"PODIOC_LOG_LEVEL": "DEBUG", "N": "3"}
    saved = AutosaveSettings.from_config(cfg.autosave, cfg.source, cfg.base_dir, {})
    assert (saved.directory, saved.period, saved.pvs) == (Path("/cfg/sav"), 2.5, ("a",))
    putlog = PutLogSettings.from_config(cfg.put_log, cfg.source, cfg.base_dir)
    assert (putlog.stdout, putlog.file, putlog.tcp, putlog.coalesce, putlog.queue) == (
        False, Path("/cfg/log/puts.jsonl"), "[::1]:7011", 0.5, 100)


@pytest.mark.parametrize(("block", "value"), [
    ("deploy", {"namspace": "x"}), ("autosave", {"debouce": 1}), ("access", {"fiel": "a"}),
    ("epics", {"CA_PORT": 1}), ("deploy", {"tolerations": [{"efect": "NoExecute"}]}),
    ("deploy", {"resources": {"limits": {"gpu": 1}}}), ("put_log", {"stdot": False}),
    ("put_log", {"tcp": "no-port"}), ("put_log", {"coalesce": -1}),
])
def test_the_json_schema_refuses_typos_as_podioc_does(block: str, value: Any) -> None:
    data = {"ioc": "x.py", "prefix": "", block: value}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, printed_schema())
    with pytest.raises(ConfigError):
        cfgmod.parse(data, "x.yaml", Path("/cfg"))


# -- every problem at once --------------------------------------------------------------------


def test_every_problem_is_reported_with_its_path_and_fix() -> None:
    data = {"ioc": "x.py", "prefix": "A B", "health": "yes",
            "autosave": {"debouce": 1, "period": 0},
            "deploy": {"namspace": "x", "termination_grace_period": 1},
            "access": {"fiel": "rules.acf"}}
    with pytest.raises(ConfigError) as info:
        cfgmod.parse(data, "inst.yaml", Path("/cfg"))
    err = info.value
    by_field = {p.field: p for p in err.problems}
    assert set(by_field) == {"prefix", "health", "autosave.debouce", "autosave.period",
                             "deploy.namspace", "deploy.termination_grace_period",
                             "access.fiel"}
    assert by_field["autosave.debouce"].problem == "unknown setting; did you mean 'debounce'?"
    assert by_field["autosave.debouce"].fix.startswith("known settings: enabled, directory")
    assert by_field["deploy.namspace"].problem.endswith("did you mean 'namespace'?")
    assert by_field["access.fiel"].problem.endswith("did you mean 'file'?")
    assert by_field["autosave.period"].problem == "0 is not a number of seconds >= 0.01"
    assert all(p.fix for p in err.problems)
    lines = str(err).splitlines()
    assert len(lines) == len(err.problems)
    assert all(line.startswith("inst.yaml: ") for line in lines)
    assert "inst.yaml: deploy.namspace: unknown setting; did you mean 'namespace'? (known " \
           "settings: namespace, image," in str(err)
    assert (err.field, err.problem) == (err.problems[0].field, err.problems[0].problem)


def test_a_far_off_typo_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        cfgmod.parse({"ioc": "x", "prefix": "", "autosave": {"zzz": 1}}, "i.yaml", Path("."))
    assert info.value.problem == "unknown setting"


def test_paths_into_lists_and_mappings() -> None:
    data = {"ioc": "x", "prefix": "", "autosave": {"pvs": ["a", ""]},
            "deploy": {"tolerations": [{}, {"operator": "Maybe"}],
                       "node_selector": {"ok": "x", "bad key!": "y"}},
            "access": {"rules": "r", "groups": {"A": [1]}}}
    with pytest.raises(ConfigError) as info:
        cfgmod.parse(data, "i.yaml", Path("."))
    assert [p.field for p in info.value.problems] == [
        "deploy.node_selector.bad key!", "deploy.tolerations[1].operator", "autosave.pvs",
        "access.groups.A"]


def test_blocks_may_be_empty_or_null() -> None:
    empty: dict[str, object] | None
    for empty in (None, {}):
        cfg = cfgmod.parse({"ioc": "x", "prefix": "", "deploy": empty, "autosave": empty,
                            "access": empty, "epics": empty, "args": empty}, "i.yaml",
                           Path("."))
        assert cfg.deploy == cfg.autosave == cfg.access == cfg.epics == cfg.args == {}


def test_access_needs_file_or_rules() -> None:
    with pytest.raises(ConfigError) as info:
        cfgmod.parse({"ioc": "x", "prefix": "", "access": {"groups": {"A": ["x"]}}},
                     "i.yaml", Path("."))
    assert str(info.value).startswith("i.yaml: access: needs exactly one of file: or rules:")


def test_settings_builders_report_every_problem_of_their_block(tmp_path: Path) -> None:
    cfg = replace(cfgmod.parse({"ioc": "x", "prefix": ""}, "i.yaml", tmp_path),
                  deploy={"namespace": "Bad", "image": "a b", "replicas": 2})
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert [p.field for p in info.value.problems] == [
        "deploy.namespace", "deploy.image", "deploy.replicas"]
    with pytest.raises(ConfigError) as info:
        AutosaveSettings.from_config({"debounce": -1, "generations": 1.5}, "i.yaml",
                                     tmp_path, {})
    assert [p.field for p in info.value.problems] == ["autosave.debounce",
                                                      "autosave.generations"]
