"""The iocStats-compatible health PVs, read with EPICS base's caget/cainfo and p4p.

Types are those of iocAdmin's ioc.template (ai/calc/calcout/sub -> DBF_DOUBLE,
stringin -> DBF_STRING, APP_DIR a char waveform); values are checked for
plausibility against what this process sees. SYSRESET: a permitted put shuts
the IOC down cleanly (autosave's last save) and it exits with 75; a put the
access rules deny (or, without rules, any put by default) is refused.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import IocProcess, poll_until, pva_client
from harness.epicsbase import epics_base
from harness.testiocs import write_allkinds_yaml
from podioc.autosave.fileformat import decode
from podioc.autosave.settings import file_name_for
from podioc.autosave.starts import counter_path
from podioc.runtime.health import RESTART_EXIT_CODE

IocFactory = Callable[..., IocProcess]
BASIC = Path(__file__).resolve().parent / "iocs" / "autosave_basic.py"

DOUBLES = ["HEARTBEAT", "START_CNT", "SYSRESET", "CA_CLNT_CNT", "CA_CONN_CNT", "RECORD_CNT",
           "FD_MAX", "FD_CNT", "FD_FREE", "SYS_CPU_LOAD", "IOC_CPU_LOAD", "MEM_USED",
           "MEM_FREE", "MEM_MAX"]
STRINGS = ["STARTTOD", "TOD", "KERNEL_VERS", "EPICS_VERS", "HOSTNAME", "UPTIME", "ENGINEER",
           "LOCATION"]
NAMES = [*DOUBLES, *STRINGS, "APP_DIR"]
TOD_RE = re.compile(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d$")
UPTIME_RE = re.compile(r"^(\d+ days?, )?\d\d:\d\d:\d\d$")


def caget(ioc: IocProcess, *names: str) -> dict[str, str]:
    """Values as caget prints them (-S: a char array as a string), by suffix."""
    result = epics_base().run("caget", "-S", *[ioc.pv(n) for n in names], target=ioc)
    assert result.returncode == 0, result.output
    return {line.split(None, 1)[0][len(ioc.prefix):]: line.split(None, 1)[1].strip()
            for line in result.stdout.splitlines() if line.strip()}


def cainfo(ioc: IocProcess, *names: str) -> dict[str, dict[str, str]]:
    """cainfo's "Key: value" lines per PV suffix."""
    result = epics_base().run("cainfo", *[ioc.pv(n) for n in names], target=ioc)
    assert result.returncode == 0, result.output
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith(ioc.prefix):
            current = out.setdefault(line.strip()[len(ioc.prefix):], {})
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
    return out


def test_types_as_in_ioc_template(allkinds: IocProcess) -> None:
    info = cainfo(allkinds, *NAMES)
    types = {name: info[name]["Native data type"] for name in NAMES}
    assert types == {**dict.fromkeys(DOUBLES, "DBF_DOUBLE"), **dict.fromkeys(STRINGS, "DBF_STRING"),
                     "APP_DIR": "DBF_CHAR"}
    assert info["APP_DIR"]["Element count"] == "160"
    # without access rules SYSRESET takes no puts (health.sysreset: rules, the default)
    assert {info[name]["Access"] for name in NAMES} == {"read, no write"}


def test_metadata_as_in_ioc_template(allkinds: IocProcess) -> None:
    result = epics_base().run("caget", "-d", "DBR_CTRL_DOUBLE", allkinds.pv("IOC_CPU_LOAD"),
                              allkinds.pv("CA_CLNT_CNT"), allkinds.pv("FD_FREE"),
                              allkinds.pv("MEM_USED"), target=allkinds)
    assert result.returncode == 0, result.output
    blocks = result.stdout.split(allkinds.prefix)[1:]
    ctrl = {b.split()[0]: dict(re.findall(r"^\s+([\w ]+):\s*(\S*)", b, re.M)) for b in blocks}
    assert (ctrl["IOC_CPU_LOAD"]["Units"], ctrl["IOC_CPU_LOAD"]["Precision"]) == ("%", "1")
    assert (ctrl["IOC_CPU_LOAD"]["Hi warn limit"], ctrl["IOC_CPU_LOAD"]["Hi alarm limit"]) == (
        "70", "80")
    assert (ctrl["CA_CLNT_CNT"]["Hi warn limit"], ctrl["CA_CLNT_CNT"]["Hi alarm limit"]) == (
        "100", "175")
    assert (ctrl["FD_FREE"]["Lo warn limit"], ctrl["FD_FREE"]["Lo alarm limit"]) == ("20", "5")
    assert ctrl["MEM_USED"]["Units"] == "byte"


def test_values_are_plausible(allkinds: IocProcess) -> None:
    got = caget(allkinds, *NAMES)
    number = {name: float(got[name]) for name in DOUBLES}
    assert 0 < number["FD_CNT"] <= number["FD_MAX"]
    assert 0 <= number["FD_FREE"] <= number["FD_MAX"]
    assert 0 < number["MEM_USED"] < number["MEM_MAX"]
    assert 0 < number["MEM_FREE"] <= number["MEM_MAX"]
    assert 0 <= number["IOC_CPU_LOAD"] <= 100 and 0 <= number["SYS_CPU_LOAD"] <= 100
    assert number["RECORD_CNT"] == allkinds.pv_count
    assert number["START_CNT"] == 1  # no autosave directory: not counted
    assert number["SYSRESET"] == 0 and number["HEARTBEAT"] >= 1
    assert got["HOSTNAME"] == socket.gethostname()[:39]
    uname = platform.uname()
    assert got["KERNEL_VERS"] == f"{uname.system} {uname.release}"[:39]
    assert got["EPICS_VERS"].startswith("podioc ") and "caproto" in got["EPICS_VERS"]
    assert got["APP_DIR"] == os.getcwd()[:160]  # the harness starts it in our directory
    assert TOD_RE.match(got["STARTTOD"]) and TOD_RE.match(got["TOD"]), got
    assert UPTIME_RE.match(got["UPTIME"]), got["UPTIME"]
    first = got["TOD"]
    poll_until(lambda: caget(allkinds, "TOD")["TOD"] != first, timeout=15,
               message="TOD advances")
    poll_until(lambda: caget(allkinds, "UPTIME")["UPTIME"] != got["UPTIME"], timeout=15,
               message="UPTIME advances")


def test_same_values_over_pva(allkinds: IocProcess, pva: Any) -> None:
    static = ["HOSTNAME", "EPICS_VERS", "KERNEL_VERS", "STARTTOD", "ENGINEER", "LOCATION",
              "RECORD_CNT", "FD_MAX", "START_CNT"]
    over_ca = caget(allkinds, *static)
    values = {name: pva.get(allkinds.pv(name), timeout=10) for name in NAMES}
    for name in DOUBLES:
        assert isinstance(values[name].real, float), name
    for name in STRINGS:
        assert isinstance(values[name], str), name
    assert bytes(values["APP_DIR"]).decode() == os.getcwd()[:160]
    for name in static:
        shown = f"{values[name]:g}" if name in DOUBLES else values[name]
        assert shown == over_ca[name], name


def test_engineer_and_location_from_config_then_environment(ioc_factory: IocFactory,
                                                            tmp_path: Path) -> None:
    config = write_allkinds_yaml(tmp_path, extra="health:\n  engineer: 'A. Smith'\n"
                                                  "  location: 'BL01 rack 3'\n")
    ioc = ioc_factory(config, extra_env={"LOCATION": "hutch B"})
    assert caget(ioc, "ENGINEER", "LOCATION") == {"ENGINEER": "A. Smith",
                                                  "LOCATION": "hutch B"}


# -- START_CNT and SYSRESET -----------------------------------------------------------------
RULES_GRANT = "ASG(DEFAULT) { RULE(1, WRITE) }"
RULES_DENY = "ASG(DEFAULT) { RULE(1, WRITE) }\nASG(LOCKED) { RULE(1, READ) }"


def autosave_config(directory: Path, savedir: Path, *, rules: str | None = None,
                    locked: bool = False, sysreset: str | None = None) -> Path:
    """The autosave test IOC (a shutdown hook sets MODE to OFF), saving only at shutdown
    (debounce 600 s), with optional access rules and SYSRESET mode."""
    lines = [f"ioc: '{BASIC}:AutosaveBasic'", "prefix: 'UNUSED:'", "autosave:",
             f"  directory: '{savedir}'", "  debounce: 600", "  period: 600"]
    if rules is not None:
        (directory / "rules.acf").write_text(rules + "\n")
        lines += ["access:", "  file: rules.acf"]
        if locked:
            lines += ["  groups:", "    LOCKED: [SYSRESET]"]
    if sysreset is not None:
        lines += ["health:", f"  sysreset: {sysreset}"]
    path = directory / "iocstats.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def saved(path: Path) -> dict[str, Any] | None:
    """The values in an autosave file; None before the first save."""
    try:
        values: dict[str, Any] = decode(path.read_bytes()).values
    except FileNotFoundError:
        return None
    return values


def pva_put_fails(ioc: IocProcess, name: str, value: float) -> str:
    with pva_client(ioc) as ctx:
        try:
            ctx.put(ioc.pv(name), value, timeout=10)
        except Exception as exc:  # p4p raises RemoteError for a refused put
            return str(exc)
    return ""


@pytest.mark.parametrize(("rules", "sysreset", "protocol"), [
    (RULES_GRANT, None, "ca"), (None, "open", "pva")])
def test_sysreset_restarts_cleanly(ioc_factory: IocFactory, tmp_path: Path,
                                   rules: str | None, sysreset: str | None,
                                   protocol: str) -> None:
    """Access rules that grant WRITE (or ``sysreset: open`` without rules): a put of 1
    (CA or PVA) shuts the IOC down as SIGTERM does (the last autosave, shutdown hooks),
    exit 75; the next start counts 2 and has the saved value back."""
    savedir = tmp_path / "save"
    config = autosave_config(tmp_path, savedir, rules=rules, sysreset=sysreset)
    ioc = ioc_factory(config)
    base = epics_base()
    assert caget(ioc, "START_CNT") == {"START_CNT": "1"}
    assert cainfo(ioc, "SYSRESET")["SYSRESET"]["Access"] == "read, write"
    assert base.run("caput", ioc.pv("LEVEL"), "42.5", target=ioc).returncode == 0
    assert base.run("caput", ioc.pv("MODE"), "HEAT", target=ioc).returncode == 0
    assert saved(savedir / file_name_for(ioc.prefix)) is None  # debounce: not yet saved
    if protocol == "ca":
        put = base.run("caput", "-c", "-w", "10", ioc.pv("SYSRESET"), "1", target=ioc)
        assert put.returncode == 0, put.output
    else:
        with pva_client(ioc) as ctx:
            ctx.put(ioc.pv("SYSRESET"), 1, timeout=10)  # completes: the reply comes first
    assert ioc.wait(30) == RESTART_EXIT_CODE, ioc.log_text()
    log = ioc.log_text()
    assert "SYSRESET: restarting" in log and log.rfind("stopped") > log.rfind("SYSRESET")
    values = saved(savedir / file_name_for(ioc.prefix))
    assert values is not None and values[ioc.pv("LEVEL")] == 42.5  # the last save
    assert values[ioc.pv("MODE")] == "HEAT"  # saved before the shutdown hook set OFF
    assert counter_path(savedir, file_name_for(ioc.prefix)).read_text() == "1\n"
    ioc.start()  # what the container runtime does after exit 75
    assert caget(ioc, "START_CNT", "LEVEL", "SYSRESET") == {
        "START_CNT": "2", "LEVEL": "42.5", "SYSRESET": "0"}


@pytest.mark.parametrize(("rules", "locked", "sysreset"), [
    (RULES_DENY, True, None),   # the rules put SYSRESET in a read-only group
    (None, False, None),        # no rules: refused unless sysreset: open
    (RULES_GRANT, False, "off"),  # off (YAML false: never): refused where rules grant WRITE
])
def test_sysreset_refused(ioc_factory: IocFactory, tmp_path: Path, rules: str | None,
                          locked: bool, sysreset: str | None) -> None:
    config = autosave_config(tmp_path, tmp_path / "save", rules=rules, locked=locked,
                             sysreset=sysreset)
    ioc = ioc_factory(config)
    put = epics_base().run("caput", "-c", "-w", "5", ioc.pv("SYSRESET"), "1", target=ioc)
    assert put.returncode != 0 or "denied" in put.output.lower(), put.output
    assert pva_put_fails(ioc, "SYSRESET", 1) != ""
    beat = float(caget(ioc, "HEARTBEAT")["HEARTBEAT"])
    poll_until(lambda: float(caget(ioc, "HEARTBEAT")["HEARTBEAT"]) > beat, timeout=15,
               message="the IOC still runs")
    assert caget(ioc, "SYSRESET") == {"SYSRESET": "0"}
    assert ioc.stop() == 0
