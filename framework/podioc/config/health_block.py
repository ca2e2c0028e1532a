"""The instance config's ``health:`` block: the health PVs, podioc's own and the
iocStats-compatible names (see :mod:`podioc.runtime.health`).

``health: true`` / ``health: false`` is short for ``health: {enabled: ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from .hints import Hint, problem

#: What a put to SYSRESET may do (see the README, "Health PVs").
SysresetMode = Literal["rules", "open", "never"]
SYSRESET_MODES: tuple[SysresetMode, ...] = ("rules", "open", "never")

#: A CA string holds 39 bytes (UTF-8) plus the terminating NUL.
_Text = Annotated[str, StringConstraints(max_length=39), Hint(
    "{value} is not a string of at most 39 characters", "e.g. engineer: 'A. Smith'")]


def _false_is_never(value: Any) -> Any:
    """YAML reads ``off`` and ``no`` as false: take it for ``never``."""
    return "never" if value is False else value


class HealthBlock(BaseModel):
    """Health PVs: HEARTBEAT, UPTIME, CA_CLNT_CNT... (iocStats names) and podioc's own."""

    model_config = ConfigDict(extra="forbid", strict=True, title="health")

    enabled: Annotated[bool, Hint("{value} is not true or false",
                                  "enabled: true or enabled: false")] = Field(
        default=True, description="false: serve no health PVs")
    engineer: _Text | None = Field(
        default=None, description="ENGINEER PV: who looks after this IOC ($ENGINEER wins)")
    location: _Text | None = Field(
        default=None, description="LOCATION PV: where it runs ($LOCATION wins)")
    sysreset: Annotated[SysresetMode, BeforeValidator(_false_is_never), Hint(
        "{value} is not one of rules, open, never",
        "sysreset: rules (access rules decide; refused without them), open (any client "
        "when there are no access rules, as iocStats) or never")] = Field(
        default="rules", description="who may restart the IOC by writing 1 to SYSRESET: "
        "rules (clients the access rules grant WRITE; nobody without access rules), "
        "open (also every client when there are no access rules), never (nobody; "
        "false means the same)")


def health_or_bool(value: Any) -> Any:
    """``true``/``false`` -> ``{enabled: ...}``; a mapping as is; null -> defaults."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"enabled": value}
    if not isinstance(value, dict):
        raise problem(f"{value!r} is not true, false or a mapping of health settings",
                      "health: true, health: false or health: {engineer: ..., location: ...}")
    return value


def health_schema(schema: dict[str, Any]) -> None:
    """Editors: the block may also be written as true or false."""
    block = {"$ref": schema.pop("$ref")} if "$ref" in schema else schema.pop("allOf")[0]
    schema["anyOf"] = [{"type": "boolean"}, block]
