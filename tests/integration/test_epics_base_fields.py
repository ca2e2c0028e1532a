"""Record-field names over CA and PVA (``P:X.DESC`` ...), read with caget and pvget.

Each PV answers, over CA and PVA, the fields of the record type it corresponds to (ao/ai,
longout/longin, bo/bi, mbbo/mbbi, stringout/stringin, waveform), made on the
first search; SEVR and STAT follow the alarm. Metadata fields take writes
(test_epics_base_metadata.py); the others are read-only.
"""

from __future__ import annotations

import pytest

from harness import IocProcess, poll_until
from harness.epicsbase import epics_base

FIELDS = {
    "FLOAT.VAL": "1.5", "FLOAT.NAME": "{p}FLOAT", "FLOAT.RTYP": "ao", "FLOAT.DESC": "A float",
    "FLOAT.EGU": "mm", "FLOAT.PREC": "3", "FLOAT.HOPR": "200", "FLOAT.LOPR": "-200",
    "FLOAT.DRVH": "100", "FLOAT.DRVL": "-100", "FLOAT.HIHI": "90", "FLOAT.HIGH": "50",
    "FLOAT.LOW": "-50", "FLOAT.LOLO": "-90", "FLOAT.HHSV": "MAJOR", "FLOAT.HSV": "MINOR",
    "FLOAT.SEVR": "NO_ALARM", "FLOAT.STAT": "NO_ALARM",
    "RO_FLOAT.RTYP": "ai", "INT.RTYP": "longout", "TICKS.RTYP": "longin",
    "BOOL.RTYP": "bo", "BOOL.ZNAM": "Off", "BOOL.ONAM": "On",
    "ENUM.RTYP": "mbbo", "ENUM.ZRST": "ZERO", "ENUM.THST": "THREE",
    "STRING.RTYP": "stringout", "RO_STRING.RTYP": "stringin", "RO_STRING.DESC": "Read-only string",
    "WF_F64.RTYP": "waveform", "WF_F64.NELM": "8", "WF_F64.NORD": "3", "WF_F64.FTVL": "DOUBLE",
    "WF_U8.FTVL": "UCHAR",
}


def caget(ioc: IocProcess, *names: str) -> dict[str, str]:
    result = epics_base().run("caget", *[ioc.pv(n) for n in names], target=ioc)
    assert result.returncode == 0, result.output
    return {line.split(None, 1)[0][len(ioc.prefix):]: line.split(None, 1)[1].strip()
            for line in result.stdout.splitlines() if line.strip()}


def test_fields_resolve_per_record_type(allkinds: IocProcess) -> None:
    got = caget(allkinds, *FIELDS)
    assert got == {name: text.format(p=allkinds.prefix) for name, text in FIELDS.items()}


@pytest.mark.parametrize("name", ["RO_FLOAT.DRVH", "INT.PREC", "STRING.EGU", "FLOAT.NOPE"])
def test_fields_the_record_type_lacks_are_not_found(allkinds: IocProcess, name: str) -> None:
    result = epics_base().run("caget", "-w", "2", allkinds.pv(name), target=allkinds)
    assert result.returncode != 0 and "not found" in result.output, result.output


def test_sevr_and_stat_follow_the_alarm(allkinds: IocProcess) -> None:
    base = epics_base()
    assert base.run("caput", allkinds.pv("FLOAT"), "60", target=allkinds).returncode == 0
    try:
        poll_until(lambda: caget(allkinds, "FLOAT.SEVR", "FLOAT.STAT") == {
            "FLOAT.SEVR": "MINOR", "FLOAT.STAT": "HIGH"}, timeout=10, message="SEVR/STAT")
    finally:
        base.run("caput", allkinds.pv("FLOAT"), "1.5", target=allkinds)


def test_fields_are_read_only_and_val_is_the_pv(allkinds: IocProcess) -> None:
    """Fields besides the metadata operators change (test_epics_base_metadata) are read-only."""
    base = epics_base()
    result = base.run("caput", "-w", "2", allkinds.pv("FLOAT.RTYP"), "ai", target=allkinds)
    assert caget(allkinds, "FLOAT.RTYP") == {"FLOAT.RTYP": "ao"}, result.output
    assert base.run("caput", allkinds.pv("FLOAT.VAL"), "2.5", target=allkinds).returncode == 0
    try:
        assert caget(allkinds, "FLOAT") == {"FLOAT": "2.5"}
    finally:
        base.run("caput", allkinds.pv("FLOAT"), "1.5", target=allkinds)


def pvget(ioc: IocProcess, name: str) -> str:
    result = epics_base().run("pvget", ioc.pv(name), target=ioc)
    assert result.returncode == 0, result.output
    return result.stdout.split(None, 1)[1].strip()


@pytest.mark.parametrize(("name", "text"), [
    ("FLOAT.DESC", '"A float"'), ("FLOAT.RTYP", "ao"), ("FLOAT.HIHI", "90"),
    ("FLOAT.PREC", "3"), ("FLOAT.HHSV", "(2) MAJOR"), ("ENUM.TWST", "TWO"),
    ("FLOAT.VAL", "1.5"), ("ENUM.VAL", "(1) ONE")])
def test_fields_over_pva(allkinds: IocProcess, name: str, text: str) -> None:
    assert pvget(allkinds, name).endswith(text)


def test_pva_sevr_follows_the_alarm_and_read_only_fields_refuse_puts(allkinds: IocProcess) -> None:
    base = epics_base()
    assert pvget(allkinds, "FLOAT.SEVR").endswith("NO_ALARM")
    assert base.run("caput", allkinds.pv("FLOAT"), "60", target=allkinds).returncode == 0
    try:
        poll_until(lambda: pvget(allkinds, "FLOAT.SEVR").endswith("(1) MINOR"), timeout=10,
                   message="PVA SEVR follows the alarm")
    finally:
        base.run("caput", allkinds.pv("FLOAT"), "1.5", target=allkinds)
    result = base.run("pvput", allkinds.pv("FLOAT.RTYP"), "ai", target=allkinds)
    assert result.returncode != 0 and "read-only" in result.output, result.output
