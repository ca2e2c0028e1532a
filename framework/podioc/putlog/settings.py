"""Put-log settings: the instance config's ``put_log:`` block.

```yaml
put_log:
  enabled: true            # false: no put log
  stdout: true             # JSON lines on standard output (the normal log is on stderr)
  file: ./log/puts.jsonl   # also to this file (relative to the config file), rotated:
  max_bytes: 10485760      #   at this size,
  backups: 5               #   keeping puts.jsonl.1 .. puts.jsonl.5
  tcp: 192.0.2.10:7011     # also to a TCP log server (one line per message)
  coalesce: 1.0            # s: a client's puts to one PV within this time: one line
  queue: 10000             # lines waiting to be written, at most (then dropped, counted)
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.problems import validate
from ..config.putlog_block import (
    DEFAULT_BACKUPS,
    DEFAULT_COALESCE,
    DEFAULT_MAX_BYTES,
    DEFAULT_QUEUE,
    PutLogBlock,
)


@dataclass(frozen=True)
class PutLogSettings:
    """Validated put-log settings of one instance."""

    enabled: bool = True
    stdout: bool = True
    file: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS
    tcp: str | None = None
    coalesce: float = DEFAULT_COALESCE
    queue: int = DEFAULT_QUEUE
    source: str = "<defaults>"

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, source: str,
                    base_dir: Path) -> PutLogSettings:
        """Validate the ``put_log:`` block; errors name the file, every bad field and the fix."""
        checked = validate(PutLogBlock, dict(block or {}), source, "put_log")
        file = base_dir / Path(checked.file).expanduser() if checked.file else None
        return cls(enabled=checked.enabled, stdout=checked.stdout, file=file,
                   max_bytes=checked.max_bytes, backups=checked.backups, tcp=checked.tcp,
                   coalesce=float(checked.coalesce), queue=checked.queue, source=source)
