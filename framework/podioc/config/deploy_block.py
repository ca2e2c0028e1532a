"""The instance config's ``deploy:`` block, declared once (see :mod:`podioc.deploy.settings`
for the settings built from it and the defaults derived from other keys)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from .hints import Hint, problem

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
LABEL_KEY = (r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?"
             r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
OBJECT_NAME = r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$"  # "" = not set
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Variables podioc sets itself in the container; ``deploy.env`` may not set them.
RESERVED_ENV = frozenset({"PODIOC_PREFIX", "PODIOC_TARGET", "PODIOC_AUTOSAVE_DIR",
                          "PODIOC_NODE_IP", "PODIOC_POD_IP"})
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
DNS_FIX = "a DNS label: lower-case letters, digits and '-'"
LABEL_FIX = "label keys like podioc.io/beamline and values of up to 63 letters/digits/-_."
QUANTITY_FIX = "a Kubernetes quantity like 250m or 256Mi"
RESOURCES_FIX = ("e.g. {requests: {cpu: 100m, memory: 128Mi}, "
                 "limits: {cpu: '1', memory: 512Mi}}")
TOLERATION_FIX = ("a list like [{key: podioc.io/beamline, operator: Equal, value: bl01, "
                  "effect: NoSchedule}]")


def _as_text(value: Any) -> Any:
    """YAML numbers are taken as their text (``cpu: 1`` means ``"1"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _text_schema(pattern: str | None = None) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": ["string", "number"]}
    if pattern is not None:
        schema["pattern"] = pattern
    return WithJsonSchema(schema)


_INVALID = "{value} is not valid"
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL), BeforeValidator(_as_text),
                     Hint(_INVALID, DNS_FIX), _text_schema(DNS_LABEL)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE), BeforeValidator(_as_text),
                       Hint(_INVALID, LABEL_FIX), _text_schema(LABEL_VALUE)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY), BeforeValidator(_as_text),
                     Hint(_INVALID, QUANTITY_FIX), _text_schema(QUANTITY)]
ObjectName = Annotated[str, StringConstraints(pattern=OBJECT_NAME), BeforeValidator(_as_text),
                       Hint(_INVALID, "a Kubernetes object name"), _text_schema(OBJECT_NAME)]
ImageRef = Annotated[str, StringConstraints(pattern=r"^\S+$"), BeforeValidator(_as_text),
                     Hint(_INVALID, "an image reference such as NAME:TAG or NAME@sha256:DIGEST"),
                     _text_schema(r"^\S+$")]
TolerationText = Annotated[str, BeforeValidator(_as_text), Hint("must be a string",
                                                                TOLERATION_FIX), _text_schema()]
EnvValue = Annotated[str, BeforeValidator(_as_text), Hint("{value} must be a string",
                                                          "a mapping of variable names to "
                                                          "values"), _text_schema()]


def _env_name(name: str) -> str:
    if not re.match(ENV_NAME, name):
        raise problem("is not a valid name", "a mapping of variable names to values")
    if name in RESERVED_ENV:
        raise problem("is set by podioc", "set the prefix with 'prefix:' and the rest is derived")
    if name.startswith("EPICS_"):
        raise problem("EPICS settings belong in 'epics:'", "move it to the config's epics: block")
    return name


class Amounts(BaseModel):
    """CPU and memory quantities."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cpu: Quantity | None = Field(default=None, description="e.g. 100m or '1'")
    memory: Quantity | None = Field(default=None, description="e.g. 128Mi")

    @model_validator(mode="before")
    @classmethod
    def _only_cpu_and_memory(cls, data: Any) -> Any:
        if not isinstance(data, dict) or set(data) - {"cpu", "memory"}:
            raise problem("must map cpu and/or memory to quantities", RESOURCES_FIX)
        return data


class Resources(BaseModel):
    """Container resources; keys not given keep their defaults (requests 100m/128Mi,
    limits 1/512Mi)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    requests: Amounts | None = Field(default=None, description="what the scheduler reserves")
    limits: Amounts | None = Field(default=None, description="the most the IOC may use")


class Toleration(BaseModel):
    """A Kubernetes toleration."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    key: TolerationText | None = Field(default=None, description="taint key")
    operator: Annotated[Literal["Equal", "Exists"], Hint(
        "must be Equal or Exists", TOLERATION_FIX)] | None = Field(
        default=None, description="Equal (default) or Exists")
    value: TolerationText | None = Field(default=None, description="taint value")
    effect: Annotated[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"], Hint(
        "must be one of NoExecute, NoSchedule, PreferNoSchedule", TOLERATION_FIX)] | None = (
        Field(default=None, description="taint effect"))
    toleration_seconds: Annotated[int, Hint("must be an integer", TOLERATION_FIX)] | None = (
        Field(default=None, alias="tolerationSeconds",
              description="seconds a NoExecute taint is tolerated"))


class DeployBlock(BaseModel):
    """Container and Kubernetes settings (``podioc manifest`` and ``podioc up``); options of
    those commands override them."""

    model_config = ConfigDict(extra="forbid", strict=True, title="deploy")

    namespace: DnsLabel = Field(
        default="podioc", description="Kubernetes namespace (one per beamline is typical)")
    image: ImageRef | None = Field(
        default=None, description="image with the IOC code (default podioc:<podioc version>); "
        "pin NAME@sha256:... in production")
    image_pull_policy: Annotated[Literal["Always", "IfNotPresent", "Never", ""], Hint(
        "{value} is not valid", "Always, IfNotPresent or Never")] | None = Field(
        default=None, description="default: Always for a tag, IfNotPresent for a digest")
    code_dir: Annotated[str, StringConstraints(pattern=r"^(/.*)?$"), Hint(
        "{value} is not an absolute path",
        "the IOC code's directory inside the image, e.g. /iocs/demo/")] | None = Field(
        default=None, description="where the config's IOC code lives in the image (default "
        "/iocs/<directory of this file>/)")
    beamline: DnsLabel = Field(
        default="default", description="node label/taint value the IOC is pinned to")
    node_selector: dict[Annotated[str, StringConstraints(pattern=LABEL_KEY), Hint(
        "is not a valid name", LABEL_FIX)], LabelValue] | None = Field(
        default=None, description="node labels the pod needs (default {podioc.io/beamline: "
        "<beamline>})")
    tolerations: list[Toleration] | None = Field(
        default=None, description="default: tolerate the podioc.io/beamline=<beamline> taint")
    part_of: LabelValue | None = Field(
        default=None, description="app.kubernetes.io/part-of (default: beamline)")
    resources: Resources | None = Field(
        default=None, description="CPU and memory requests and limits")
    tmp_size: Quantity = Field(
        default="64Mi", description="/tmp is an in-memory emptyDir of this size")
    autosave_size: Quantity = Field(
        default="64Mi", description="size of the autosave volumeClaimTemplate")
    autosave_storage_class: ObjectName | None = Field(
        default=None,
        description="storageClassName of the autosave claim (default: the cluster's)")
    autosave_claim: ObjectName | None = Field(
        default=None, description="use this existing claim instead of a template")
    termination_grace_period: Annotated[int, Field(ge=15, le=3600), Hint(
        "{value} is not a number of seconds",
        "an integer from 15 to 3600: the final autosave may take up to 10 s; "
        "30 leaves time for a clean shutdown")] = Field(
        default=30, description="seconds between SIGTERM and SIGKILL")
    priority_class: ObjectName | None = Field(
        default=None, description="priorityClassName (default: none)")
    env: dict[Annotated[str, AfterValidator(_env_name)], EnvValue] | None = Field(
        default=None, description="extra environment variables of the container (not EPICS_*: "
        "those belong in epics:)")
