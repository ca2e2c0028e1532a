"""The ACF parser, the rights evaluator and the config's access: block (no network)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from podioc.access import ACF, Access, Ruleset, load_ruleset, parse
from podioc.access.hosts import normalize_ip, peer_ip, resolve_host
from podioc.errors import ConfigError
from podioc.limits.ratelimit import RateLimitFilter
from podioc.limits.resources import Limits

RULES = """
# a comment
UAG(ops) { alice, "bob" }
HAG(lab) { 10.0.0.7, LocalHost }
ASG(DEFAULT) { RULE(1, READ) }
ASG(OPS) {
    RULE(0, READ)
    RULE(1, WRITE, TRAPWRITE) { UAG(ops) HAG(lab) }
}
ASG(ANYHOST) { RULE(1, WRITE) { UAG(ops) } }
ASG(LOCKED)
"""


def fake_resolve(name: str) -> frozenset[str]:
    return {"localhost": frozenset({"127.0.0.1", "::1"})}.get(name, resolve_host(name)
                                                              if name[0].isdigit()
                                                              else frozenset())


@pytest.fixture
def acf() -> ACF:
    return parse(RULES, "test.acf", fake_resolve)


def test_parses_groups_and_rules(acf: ACF) -> None:
    assert acf.uags == {"ops": frozenset({"alice", "bob"})}
    assert [e.name for e in acf.hags["lab"]] == ["10.0.0.7", "localhost"]  # case-blind
    assert acf.hag_addresses("lab") == {"10.0.0.7", "127.0.0.1", "::1"}
    rule = acf.asgs["OPS"][1]
    assert (rule.level, rule.access, rule.trapwrite, rule.uags, rule.hags, rule.line) == (
        1, Access.WRITE, True, ("ops",), ("lab",), 8)
    assert acf.asgs["LOCKED"] == ()


@pytest.mark.parametrize(("asg", "user", "ip", "expected"), [
    ("OPS", "alice", "10.0.0.7", (Access.WRITE, True)),
    ("OPS", "alice", "127.0.0.1", (Access.WRITE, True)),
    ("OPS", "alice", "10.0.0.8", (Access.READ, False)),   # host not in the HAG
    ("OPS", "eve", "10.0.0.7", (Access.READ, False)),     # user not in the UAG
    ("OPS", None, "10.0.0.7", (Access.WRITE, True)),      # any user: the best one
    ("ANYHOST", "bob", "192.168.1.1", (Access.WRITE, False)),
    ("LOCKED", "alice", "127.0.0.1", (Access.NONE, False)),  # no rules: nothing
    ("UNKNOWN", "eve", "1.2.3.4", (Access.READ, False)),   # falls back to DEFAULT
])
def test_rights(acf: ACF, asg: str, user: str | None, ip: str,
                expected: tuple[Access, bool]) -> None:
    assert acf.evaluate(asg, user, ip) == expected


def test_without_default_group_unassigned_pvs_get_nothing() -> None:
    acf = parse("ASG(ONLY) { RULE(1, WRITE) }", "x.acf", fake_resolve)
    assert acf.evaluate("OTHER", "alice", "127.0.0.1") == (Access.NONE, False)


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("ASG(A) {\n RULE(1, READ) {\n  CALC(\"A=1\")\n }\n}", 3, "CALC is not supported"),
    ("ASG(A) {\n INPA(\"X:Y\")\n}", 2, "INPA is not supported"),
    ("ASG(A) { RULE(2, READ) }", 1, "level '2' must be 0 or 1"),
    ("ASG(A) { RULE(1, EXECUTE) }", 1, "access 'EXECUTE' must be NONE, READ or WRITE"),
    ("ASG(A) { RULE(1, READ, LOUD) }", 1, "'LOUD' must be TRAPWRITE or NOTRAPWRITE"),
    ("\n\nASG(A) { RULE(1, READ) { UAG(nobody) } }", 3, "UAG 'nobody' is not defined"),
    ("ASG(A) { RULE(1, READ) { HAG(nowhere) } }", 1, "HAG 'nowhere' is not defined"),
    ("UAG(a) { x }\nUAG(a) { y }", 2, "UAG 'a' is defined twice"),
    ("ASG(A) {}\nASG(A) {}", 2, "ASG 'A' is defined twice"),
    ("ASG(A) {\n RULE(1, READ)\n", 3, "ASG 'A' is not closed"),
    ("ASG(A) { RULE(1 READ) }", 1, "expected ',' after the level"),
    ("GROUP(A) {}", 1, "expected UAG, HAG or ASG"),
    ("UAG(a) { \"unterminated }", 1, "unterminated quoted string"),
    ("UAG(a) { x }\n  @", 2, "unexpected character '@'"),
    ("UAG(a) { x, }", 1, "expected user name, found '}'"),
])
def test_errors_name_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "rules.acf", fake_resolve)
    assert str(info.value).startswith(f"rules.acf: line {line}: ")
    assert reason in str(info.value)


def test_unresolvable_host_is_a_warning_and_matches_nobody() -> None:
    acf = parse("HAG(h) { no-such-host.invalid }\nASG(A) { RULE(1, WRITE) { HAG(h) } }",
                "x.acf", fake_resolve)
    assert acf.warnings == ["x.acf: line 1: host 'no-such-host.invalid' in HAG 'h' does not "
                            "resolve to an address; it matches no client"]
    assert acf.evaluate("A", "alice", "127.0.0.1") == (Access.NONE, False)


def test_addresses_are_normalised() -> None:
    assert normalize_ip("::ffff:127.0.0.2") == "127.0.0.2"
    assert normalize_ip("not an address") == ""
    assert peer_ip("127.0.0.3:5075") == "127.0.0.3"
    assert peer_ip("[::1]:5075") == "::1"
    assert peer_ip("[::ffff:10.1.2.3]:1") == "10.1.2.3"
    assert "127.0.0.1" in resolve_host("localhost")
    assert resolve_host("10.0.0.1") == {"10.0.0.1"}


# -- the access: block -------------------------------------------------------------------
NAMES = ["P:SETPOINT", "P:MODE", "P:HEARTBEAT"]
ATTRS = {"setpoint": "P:SETPOINT", "mode": "P:MODE"}


def ruleset(block: dict[str, object], tmp_path: Path) -> Ruleset:
    return load_ruleset(block, "ioc.yaml", tmp_path, NAMES, "P:", ATTRS, fake_resolve)


def test_groups_by_suffix_attribute_or_full_name(tmp_path: Path) -> None:
    (tmp_path / "rules.acf").write_text(RULES)
    rules = ruleset({"file": "rules.acf", "groups": {"OPS": ["SETPOINT", "mode"],
                                                     "LOCKED": "P:HEARTBEAT"}}, tmp_path)
    assert rules.asg_of("P:SETPOINT") == rules.asg_of("P:MODE") == "OPS"
    assert rules.asg_of("P:HEARTBEAT") == "LOCKED"
    assert rules.asg_of("P:OTHER") == "DEFAULT"
    assert rules.rights("P:SETPOINT", "alice", "10.0.0.7") is Access.WRITE
    assert rules.rights("P:HEARTBEAT", "alice", "10.0.0.7") is Access.NONE
    assert rules.origin == str(tmp_path / "rules.acf")


def test_inline_rules(tmp_path: Path) -> None:
    rules = ruleset({"rules": "ASG(DEFAULT) { RULE(1, WRITE) }"}, tmp_path)
    assert rules.rights("P:MODE", "x", "1.2.3.4") is Access.WRITE
    assert rules.origin == "ioc.yaml (access.rules)"


@pytest.mark.parametrize(("block", "message"), [
    ({}, "access: needs exactly one of file: or rules:"),
    ({"file": "a.acf", "rules": "x"}, "needs exactly one of file: or rules:"),
    ({"rules": "ASG(DEFAULT) {}", "colour": 1}, "access.colour: unknown setting"),
    ({"file": "missing.acf"}, "cannot read the access rules"),
    ({"rules": "ASG(DEFAULT) {}", "groups": {"NOPE": ["MODE"]}},
     "access.groups.NOPE: ASG 'NOPE' is not defined"),
    ({"rules": "ASG(DEFAULT) {}\nASG(A) {}", "groups": {"A": ["NOSUCH"]}},
     "access.groups.A: no PV 'NOSUCH'"),
    ({"rules": "ASG(A) {}\nASG(B) {}", "groups": {"A": ["MODE"], "B": ["mode"]}},
     "PV 'mode' is already in group 'A'"),
    ({"rules": "ASG(A) {}", "groups": {"A": [1]}}, "must be a list of PV names"),
])
def test_bad_access_blocks(tmp_path: Path, block: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ruleset(block, tmp_path)


def test_rules_without_default_warn(tmp_path: Path) -> None:
    rules = ruleset({"rules": "ASG(A) { RULE(1, WRITE) }", "groups": {"A": ["MODE"]}}, tmp_path)
    assert any("no ASG(DEFAULT)" in w for w in rules.acf.warnings)


# -- limits and log rate limiting -----------------------------------------------------------
def test_limits_from_environment() -> None:
    assert Limits.from_env({}).max_clients == 1000
    assert Limits.from_env({"PODIOC_MAX_CLIENTS": "25"}).max_clients == 25
    with pytest.raises(ConfigError, match="PODIOC_MAX_CLIENTS"):
        Limits.from_env({"PODIOC_MAX_CLIENTS": "lots"})
    assert Limits(ca_max_array_bytes=16384).ca_max_payload() == 16384 + 128


def test_rate_limit_filter_counts_what_it_suppresses() -> None:
    filt = RateLimitFilter(burst=3, period=60)
    records = [logging.LogRecord("caproto.ctx", logging.INFO, __file__, 1, "client %s", ("x",),
                                 None) for _ in range(10)]
    passed = [r for r in records if filt.filter(r)]
    assert len(passed) == 3
    assert filt._windows[("caproto.ctx", "client %s")][2] == 7
