"""The instance config's ``pvi:`` block: the PVI structure PVs served over PVA
(see :mod:`podioc.protocols.pva.pvi`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .hints import Hint

DEFAULT_NAME = "PVI"


class PviBlock(BaseModel):
    """PVI: ``PREFIX:<name>`` lists the IOC's PVs, grouped by name segment, with their
    read/write roles, for clients that build devices and screens from it (ophyd-async)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="pvi")

    enabled: Annotated[bool, Hint("{value} is not true or false",
                                  "enabled: true or enabled: false")] = Field(
        default=True, description="false: serve no PVI PV")
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-.]+$"), Hint(
        "{value} is not a PV name segment",
        "use letters, digits, '_', '-' and '.', e.g. name: PVI")] = Field(
        default=DEFAULT_NAME, description="last segment of the PVI PV names: PREFIX:<name> "
        "and PREFIX:GROUP:<name> (ophyd-async looks for PVI)")
