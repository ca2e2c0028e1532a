"""The instance config's ``access:`` block, declared once (the rules themselves are parsed
by :mod:`podioc.access`, which also resolves group members to PVs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .hints import Hint, problem

ONE_OF_FIX = "file: rules.acf (relative to the config) or rules: | followed by ACF text"

Members = Annotated[list[str] | str, Hint("must be a list of PV names",
                                          "e.g. OPERATORS: [SETPOINT, mode]")]


class AccessBlock(BaseModel):
    """Access security: EPICS ACF rules (a file or inline text) and the PVs in each access
    security group; PVs not listed are in DEFAULT."""

    model_config = ConfigDict(extra="forbid", strict=True, title="access")

    file: Annotated[str, StringConstraints(pattern=r"\S"), Hint(
        "must be a file name", "e.g. file: rules.acf (relative to the config)")] | None = Field(
        default=None, description="EPICS access security file, relative to this file")
    rules: Annotated[str, Hint("must be ACF text (use rules: |)",
                               "rules: | followed by lines like ASG(DEFAULT) { RULE(1, READ) }"
                               )] | None = Field(
        default=None, description="the same rules inline (give file or rules, not both)")
    groups: dict[str, Members] | None = Field(
        default=None, description="access security group (ASG) name -> PVs in it (PV suffixes, "
        "attribute names or full names)")

    @model_validator(mode="after")
    def _file_or_rules(self) -> AccessBlock:
        if (self.file is None) == (self.rules is None):
            raise problem("needs exactly one of file: or rules:", ONE_OF_FIX)
        return self
