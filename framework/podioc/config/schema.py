"""The instance config document, declared once: every key, its type, default and meaning.

```yaml
ioc: ioc.py:DemoDevice     # file.py:Class (relative to this file) or package.module:Class
prefix: "DEMO:"            # prepended to every PV name
description: Demo device   # optional
args: {noise: 0.05}        # keyword arguments of the class's __init__
protocols: [ca, pva]       # which servers to run (default both)
health: true               # serve the health PVs (default true), or a block:
                           # {engineer: ..., location: ..., sysreset: rules|open|never}
epics:                     # EPICS_* server settings; the process environment wins
  EPICS_CA_SERVER_PORT: 5064
deploy: {}                 # container and Kubernetes settings (podioc manifest / up)
autosave: {}               # autosave settings
access: {}                 # access security rules
put_log: {}                # the put log: one JSON line per client put (default on, stdout)
pvi: {}                    # PVI structure PVs over PVA (default on, PREFIX:PVI)
```

Unknown keys are errors (naming the closest known key) at every level, except
in ``args:`` (checked against the IOC class when it is imported) and ``epics:``
(any ``EPICS_*`` name; the values of the variables podioc reads are checked).
:func:`json_schema` is what ``podioc schema`` prints, for editors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WrapValidator,
)

from ..errors import ConfigError
from .access_block import ONE_OF_FIX, AccessBlock
from .autosave_block import AutosaveBlock
from .deploy_block import DeployBlock
from .epicsvars import VARIABLES, check_variable
from .health_block import HealthBlock, health_or_bool, health_schema
from .hints import Found, Hint, block, problem, problems_at
from .putlog_block import PutLogBlock
from .pvi_block import PviBlock

SCHEMA_VERSION: Final = 1
ProtocolName = Literal["ca", "pva"]
PROTOCOLS: tuple[ProtocolName, ...] = ("ca", "pva")
PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-:.\[\]<>;{}]*$")
EPICS_NAME_RE = re.compile(r"^EPICS_[A-Z0-9_]+$")


def _unique(protocols: list[str]) -> list[str]:
    if len(set(protocols)) != len(protocols):
        raise ValueError("listed twice")
    return protocols


def _check_epics(values: Any, handler: Callable[[Any], Any]) -> Any:
    """Values of the EPICS variables podioc reads must mean something (ports, YES/NO...);
    reported together with any other problem of the block."""
    found: list[Found] = []
    for name, value in values.items() if isinstance(values, Mapping) else ():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                check_variable(name, str(value))
            except ConfigError as exc:
                found.append(((name,), value, exc.problem, exc.fix))
    try:
        out = handler(values)
    except ValidationError as exc:
        problems_at(found, also=exc)
    if found:
        problems_at(found)
    return out


def _epics_schema(schema: dict[str, Any]) -> None:
    """Name the variables podioc reads, so editors complete them; other names are EPICS_*."""
    schema["additionalProperties"] = False
    schema["properties"] = {
        name: {"description": var.description,
               "type": ["integer", "string"] if var.kind == "port" else ["string", "number"]}
        for name, var in VARIABLES.items()}


def _access_or_none(value: Any) -> Any:
    """No block, or an empty one, means no access rules."""
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise problem("must be a mapping with file: or rules:, and groups:", ONE_OF_FIX)
    return value


EpicsName = Annotated[str, StringConstraints(pattern=EPICS_NAME_RE.pattern), Hint(
    "not an EPICS_* variable name", "e.g. EPICS_CA_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST")]
EpicsValue = Annotated[str | int | float, Hint(
    "{value} must be a string or number",
    "quote YES/NO and true/false, which YAML reads as booleans, e.g. 'NO'")]


class InstanceDocument(BaseModel):
    """A podioc instance config: which IOC class to run, under which PV prefix, with which
    arguments and settings. One file per IOC instance."""

    model_config = ConfigDict(extra="forbid", strict=True, title="podioc instance config")

    version: Annotated[Literal[1], Hint(
        "unsupported version {value}", f"this podioc reads version {SCHEMA_VERSION}")] = Field(
        default=SCHEMA_VERSION, description="version of this file's format")
    ioc: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), Hint(
        "missing or not a string",
        "set it to 'file.py:ClassName' or 'package.module:ClassName'")] = Field(
        description="the IOC class: file.py:Class (relative to this file) or "
        "package.module:Class", examples=["ioc.py:DemoDevice"])
    prefix: Annotated[str, StringConstraints(pattern=PREFIX_RE.pattern), Hint(
        "{value} is not a valid PV prefix",
        "use letters, digits and _-:.[]<>;{} e.g. 'BL01:TEMP:'")] = Field(
        description="prepended to every PV name", examples=["BL01:TEMP:"])
    description: Annotated[str, Hint("must be a string", "e.g. description: Shutter")] = Field(
        default="", description="what this instance is, for people")
    args: Annotated[dict[str, Any], block("of argument names to values",
                                          "e.g. args: {port: /dev/ttyS0}")] = Field(
        default_factory=dict, description="keyword arguments of the IOC class's __init__")
    protocols: Annotated[list[ProtocolName],
                         Field(min_length=1, json_schema_extra={"uniqueItems": True}),
                         AfterValidator(_unique), Hint(
        "{value} is not a list of protocols", "use [ca], [pva] or [ca, pva]")] = Field(
        default_factory=lambda: list(PROTOCOLS), description="the servers to run")
    health: Annotated[HealthBlock, BeforeValidator(health_or_bool)] = Field(
        default_factory=lambda: HealthBlock(), json_schema_extra=health_schema,
        description="the health PVs (HEARTBEAT, UPTIME, CA_CLNT_CNT, ... as iocStats names "
        "them): true, false, or a block with engineer, location and sysreset")
    epics: Annotated[dict[EpicsName, EpicsValue],
                     block("of EPICS_* variables to values", "e.g. EPICS_CA_SERVER_PORT: 5064"),
                     WrapValidator(_check_epics)] = Field(
        default_factory=dict, json_schema_extra=_epics_schema,
        description="EPICS_* settings of the IOC; the process environment wins")
    deploy: Annotated[DeployBlock, block("of deploy settings")] = Field(
        default_factory=lambda: DeployBlock(),
        description="container and Kubernetes settings (podioc manifest, podioc up)")
    autosave: Annotated[AutosaveBlock, block("of autosave settings")] = Field(
        default_factory=lambda: AutosaveBlock(),
        description="where and how often PV values are saved and restored")
    pvi: Annotated[PviBlock, block("of PVI settings", "e.g. pvi: {name: PVI}")] = Field(
        default_factory=lambda: PviBlock(),
        description="the PVI PVs (PREFIX:PVI) listing the IOC's PVs for ophyd-async and "
        "screen generators; served over PVA only")
    access: Annotated[AccessBlock | None, BeforeValidator(_access_or_none)] = Field(
        default=None, description="access security rules; without them every client may read "
        "every PV and write the writable ones")
    put_log: Annotated[PutLogBlock, block("of put log settings", "e.g. put_log: {file: "
                                          "puts.jsonl}")] = Field(
        default_factory=lambda: PutLogBlock(),
        description="the put log: one JSON line per accepted or refused client put (CA and "
        "PVA), to standard output and optionally a rotated file or a TCP log server")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the instance config (``podioc schema``)."""
    return InstanceDocument.model_json_schema()
