"""The instance config's ``put_log:`` block, declared once (see :mod:`podioc.putlog`
for what the put log writes and when)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .hints import Hint

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
DEFAULT_COALESCE = 1.0
DEFAULT_QUEUE = 10_000
#: ``host:port`` of a TCP log server (an IPv6 address in brackets: ``[::1]:7011``).
TCP_RE = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$"


class PutLogBlock(BaseModel):
    """The put log (like caPutLog): one JSON line per accepted or refused client put,
    on CA and PVA, to standard output and optionally to a rotated file and a TCP log
    server. Bursts to one PV by one client are coalesced into one line."""

    model_config = ConfigDict(extra="forbid", strict=True, title="put_log")

    enabled: Annotated[bool, Hint("{value} is not true or false",
                                  "enabled: true or enabled: false")] = Field(
        default=True, description="false: log no puts")
    stdout: Annotated[bool, Hint("{value} is not true or false",
                                 "stdout: true or stdout: false")] = Field(
        default=True, description="write the JSON lines to standard output (the normal "
        "log goes to standard error)")
    file: Annotated[str, StringConstraints(pattern=r"\S"), Hint(
        "{value} is not a file path",
        "e.g. file: ./putlog/puts.jsonl (relative to this file)")] | None = Field(
        default=None, description="also write them to this file, relative to this file; "
        "rotated by size")
    max_bytes: Annotated[int, Field(ge=1024), Hint(
        "{value} is not a whole number of bytes >= 1024",
        f"e.g. max_bytes: {DEFAULT_MAX_BYTES}")] = Field(
        default=DEFAULT_MAX_BYTES, description="the file is rotated when it would grow "
        "beyond this size")
    backups: Annotated[int, Field(ge=0, le=100), Hint(
        "{value} is not a whole number 0..100", f"e.g. backups: {DEFAULT_BACKUPS}")] = Field(
        default=DEFAULT_BACKUPS, description="rotated files kept: FILE.1 .. FILE.N")
    tcp: Annotated[str, StringConstraints(pattern=TCP_RE), Hint(
        "{value} is not host:port", "e.g. tcp: 192.0.2.10:7011")] | None = Field(
        default=None, description="also send them to a TCP log server (host:port), one "
        "line per message, as caPutLog does; reconnects when the server is back")
    coalesce: Annotated[float, Field(ge=0, le=60, allow_inf_nan=False), Hint(
        "{value} is not a number of seconds 0..60",
        f"e.g. coalesce: {DEFAULT_COALESCE:g} (0: one line per put)")] = Field(
        default=DEFAULT_COALESCE, description="seconds: puts to one PV by one client within "
        "this time of the first become one line (first old value, last new value, count, "
        "min and max); 0 writes one line per put")
    queue: Annotated[int, Field(ge=10, le=10_000_000), Hint(
        "{value} is not a whole number 10..10000000",
        f"e.g. queue: {DEFAULT_QUEUE}")] = Field(
        default=DEFAULT_QUEUE, description="lines waiting to be written, at most; beyond "
        "it lines are dropped, counted, and the count written to the put log")
