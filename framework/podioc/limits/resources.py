"""Bounded-resource settings, read once at start-up.

- ``PODIOC_MAX_CLIENTS`` (default 1000): concurrent client connections per
  protocol; further CA connections are closed at once, further PVA connections
  are shut down (each with one warning line naming the client).
- ``EPICS_CA_MAX_ARRAY_BYTES`` (default 16384, as in EPICS): the largest CA
  message payload a client may send (raised to the largest PV, so every PV can
  be written whole). A client that declares a larger message is disconnected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..model.kinds import Kind
from ..model.state import PV

#: Room for a DBR header (the largest, DBR_CTRL_DOUBLE, is 64 bytes) and padding.
_DBR_ROOM = 128


def pv_bytes(pv: PV) -> int:
    """Bytes of the largest value of a PV on the wire (DBR_STRING arrays excluded)."""
    spec = pv.spec
    if spec.kind is not Kind.ARRAY:
        return 40  # a DBR_STRING
    return max(spec.max_length * np.dtype(spec.dtype).itemsize, 40)


@dataclass(frozen=True)
class Limits:
    """Resource limits shared by both protocols."""

    max_clients: int = 1000
    ca_max_array_bytes: int = 16384

    @classmethod
    def from_env(cls, env: Mapping[str, str], ca_max_array_bytes: int = 16384,
                 source: str = "<environment>") -> Limits:
        raw = env.get("PODIOC_MAX_CLIENTS", "").strip()
        max_clients = cls.max_clients
        if raw:
            try:
                max_clients = int(raw)
            except ValueError:
                max_clients = 0
            if max_clients < 1:
                raise ConfigError(source, "PODIOC_MAX_CLIENTS", f"{raw!r} is not a positive "
                                  "number", "e.g. PODIOC_MAX_CLIENTS=500")
        return cls(max_clients=max_clients, ca_max_array_bytes=ca_max_array_bytes)

    def ca_max_payload(self, pvs: Iterable[PV] = ()) -> int:
        """Largest CA payload accepted from a client, in bytes."""
        largest = max((pv_bytes(pv) for pv in pvs), default=0)
        return max(self.ca_max_array_bytes, largest) + _DBR_ROOM
