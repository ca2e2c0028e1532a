"""The autosave file format, version 1: readable text, one PV per line, sealed.

Example (an instance with prefix ``DEMO:``)::

    # podioc autosave 1
    # prefix: DEMO:
    # saved: 2024-11-26T13:00:00.123456Z
    # podioc: 0.1.0
    DEMO:SETPOINT 42.5
    DEMO:MODE "HEAT"
    DEMO:ENABLED true
    DEMO:LABEL "demo heater"
    DEMO:TABLE [1.0, 2.5, 3.0]
    <END> 5 sha256=4f1c...e9

Rules (a reader must enforce every one; a file breaking any is not used):

- UTF-8 text with ``\\n`` line ends. Line 1 is exactly ``# podioc autosave <version>``;
  a reader refuses a version newer than it knows.
- ``# key: value`` lines are metadata (``prefix``, ``saved`` as ISO-8601 UTC,
  ``podioc`` version); other lines starting with ``#`` are comments. Neither
  is a PV.
- Every other line up to the end line is one PV: the full PV name, one space,
  the value as JSON. Floats are written so that they read back bit for bit
  (``NaN``, ``Infinity`` and ``-Infinity`` allowed); integers as integers;
  enum states by name (so a reordered state list cannot restore the wrong
  state); bools as ``true``/``false``; strings as JSON strings (escapes keep
  them on one line); arrays as JSON lists. A name appears at most once.
- The last line is ``<END> <count> sha256=<hex>``: the number of PV lines and
  the SHA-256 of every byte before the ``<END>`` line. The file ends with the
  newline of that line. A missing or malformed end line, a wrong count or
  checksum, or any byte after it means the file is truncated or corrupt.
  Every proper prefix of a valid file is therefore invalid.

Inspect files with ``python -m podioc.autosave check FILE...``. A hand-edited
file fails the checksum; re-seal it with ``python -m podioc.autosave reseal FILE``
(:func:`reseal` here, the file handling in :mod:`.cli`) while the IOC is stopped.

This module is pure: bytes in, bytes out, no file system.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The format version this module writes and the newest it reads.
FORMAT_VERSION = 1
_MAGIC_RE = re.compile(r"^# podioc autosave (\d+)$")
_END_RE = re.compile(rb"^<END> (\d+) sha256=([0-9a-f]{64})$")
_META_RE = re.compile(r"^# ([a-z][a-z0-9_-]*): (.*)$")


class CorruptFile(ValueError):
    """The bytes are not a complete, valid autosave file; the message says why."""


@dataclass(frozen=True)
class SaveFile:
    """A decoded autosave file: PV name -> JSON value, in file order, plus metadata."""

    values: dict[str, Any]
    meta: dict[str, str] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    @property
    def saved_at(self) -> float | None:
        """When the file was written (seconds since 1970), if its metadata says."""
        try:
            return datetime.fromisoformat(self.meta["saved"]).timestamp()
        except (KeyError, ValueError):
            return None


def iso_utc(epoch: float) -> str:
    """``2024-11-26T13:00:00.123456Z`` for a time in seconds since 1970."""
    whole = int(epoch)
    micro = round((epoch - whole) * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micro:06d}Z"


def check_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` can stand as a PV name on a line."""
    if not name or name.startswith("#") or any(c.isspace() for c in name):
        raise ValueError(f"PV name {name!r} cannot be written to an autosave file")


def encode_values(values: Mapping[str, Any]) -> str:
    """The PV lines for ``values`` (name -> JSON-able value), each ending in a newline."""
    lines = []
    for name, value in values.items():
        check_name(name)
        lines.append(f"{name} {json.dumps(value, ensure_ascii=False, allow_nan=True)}\n")
    return "".join(lines)


def seal(meta: Mapping[str, str], pv_lines: str, count: int) -> bytes:
    """A complete file: header with ``meta``, the PV lines, and the end line."""
    header = [f"# podioc autosave {FORMAT_VERSION}\n"]
    for key, value in meta.items():
        if not re.match(r"^[a-z][a-z0-9_-]*$", key) or "\n" in value:
            raise ValueError(f"metadata {key!r}: {value!r} cannot be written")
        header.append(f"# {key}: {value}\n")
    body = ("".join(header) + pv_lines).encode("utf-8")
    return body + f"<END> {count} sha256={hashlib.sha256(body).hexdigest()}\n".encode()


def encode(values: Mapping[str, Any], meta: Mapping[str, str] | None = None) -> bytes:
    """A complete autosave file holding ``values`` (name -> JSON-able value)."""
    return seal(meta or {}, encode_values(values), len(values))


def decode(data: bytes) -> SaveFile:
    """Parse and verify a file; raise :class:`CorruptFile` saying what is wrong."""
    if not data:
        raise CorruptFile("the file is empty")
    if not data.endswith(b"\n"):
        raise CorruptFile("the file does not end with a complete line (truncated)")
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    body, end_line = data[:start], data[start:-1]
    match = _END_RE.match(end_line)
    if match is None:
        raise CorruptFile("no <END> line with a checksum at the end of the file (truncated)")
    if hashlib.sha256(body).hexdigest() != match.group(2).decode():
        raise CorruptFile("checksum mismatch (the file was changed or damaged)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFile(f"not UTF-8 text: {exc}") from None
    lines = text.split("\n")[:-1]
    magic = _MAGIC_RE.match(lines[0]) if lines else None
    if magic is None:
        raise CorruptFile("the first line is not '# podioc autosave <version>'")
    version = int(magic.group(1))
    if version > FORMAT_VERSION:
        raise CorruptFile(f"format version {version} is newer than this podioc reads "
                          f"({FORMAT_VERSION}); upgrade podioc")
    meta: dict[str, str] = {}
    values: dict[str, Any] = {}
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("#"):
            meta_match = _META_RE.match(line)
            if meta_match is not None:
                meta[meta_match.group(1)] = meta_match.group(2)
            continue
        name, sep, rest = line.partition(" ")
        if not sep or not name:
            raise CorruptFile(f"line {number}: expected 'PV-NAME JSON-VALUE'")
        if name in values:
            raise CorruptFile(f"line {number}: {name} appears twice")
        try:
            values[name] = json.loads(rest)
        except ValueError as exc:
            raise CorruptFile(f"line {number}: value of {name} is not JSON: {exc}") from None
    if len(values) != int(match.group(1)):
        raise CorruptFile(f"the <END> line counts {int(match.group(1))} PVs but the file "
                          f"has {len(values)}")
    return SaveFile(values=values, meta=meta, version=version)


def reseal(data: bytes) -> bytes:
    """Recompute the end line of a hand-edited file (its last line must be the end line)."""
    text = data.decode("utf-8")
    lines = text.rstrip("\n").split("\n")
    if lines and lines[-1].startswith("<END>"):
        lines.pop()
    magic = _MAGIC_RE.match(lines[0]) if lines else None
    if magic is None:
        raise CorruptFile("the first line is not '# podioc autosave <version>'")
    body = "".join(line + "\n" for line in lines)
    count = sum(1 for line in lines[1:] if not line.startswith("#"))
    body_bytes = body.encode("utf-8")
    out = body_bytes + f"<END> {count} sha256={hashlib.sha256(body_bytes).hexdigest()}\n".encode()
    decode(out)
    return out

