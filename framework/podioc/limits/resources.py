"""Bounded-resource settings, read once at start-up.

- ``PODIOC_MAX_CLIENTS`` (default 1000): concurrent client connections per
  protocol, lowered at start-up to what the open-file limit allows (see
  :mod:`.fds`). At the cap, the oldest connection that has held no channel
  for :data:`IDLE_GRACE` seconds is closed to make room; if there is none, the
  new connection is closed at once (one rate-limited warning line each).
- ``EPICS_CA_MAX_ARRAY_BYTES`` (default 16384, as in EPICS): the largest CA
  message payload a client may send (raised to the largest PV, so every PV can
  be written whole). A client that declares a larger message is disconnected.
- ``PODIOC_DEAD_PEER_TIMEOUT`` (s, default 60): a client that stops answering
  at the TCP level (link down, host gone) is dropped within about this time,
  on both protocols (TCP keepalive after half of it, then probes; and
  ``TCP_USER_TIMEOUT`` for data it never acknowledges).
- ``EPICS_CA_CONN_TMO`` (s, default 30, from the settings): a CA circuit silent
  for this long is sent an echo request, so a dead peer is detected even if it
  holds nothing.
- ``PODIOC_PVA_MAX_BUFFER_BYTES`` (default: twice the largest PV + 8 MiB, at
  least 16 MiB): bytes a PVA client may have sent that the server has not yet
  processed (a message still arriving); beyond, it is disconnected.
- ``PODIOC_MAX_CHANNELS`` (default 200,000, at least 4 per PV): channels open
  at once over both protocols together; beyond, new channels are refused.
- ``PODIOC_FD_RESERVE`` (default 64): open files kept free of clients for
  autosave, health, logging and probes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..model.kinds import Kind
from ..model.state import PV

#: Room for a DBR header (the largest, DBR_CTRL_DOUBLE, is 64 bytes) and padding.
_DBR_ROOM = 128
#: At the client cap, a connection that has held no channel this long (s) may be closed.
IDLE_GRACE = 5.0
#: Smallest default PVA buffer bound (a message still arriving plus the kernel's buffer).
PVA_BUFFER_FLOOR = 16 * 2**20


def pv_bytes(pv: PV) -> int:
    """Bytes of the largest value of a PV on the wire (DBR_STRING arrays excluded)."""
    spec = pv.spec
    if spec.kind is not Kind.ARRAY:
        return 40  # a DBR_STRING
    return max(spec.max_length * np.dtype(spec.dtype).itemsize, 40)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float,
            source: str, integer: bool = True) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value >= minimum or (integer and not value.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(source, name, f"{raw!r} is not {kind} >= {minimum:g}",
                          f"e.g. {name}={default:g}")
    return value


@dataclass(frozen=True)
class Limits:
    """Resource limits shared by both protocols."""

    max_clients: int = 1000
    ca_max_array_bytes: int = 16384
    dead_peer_timeout: float = 60.0
    ca_conn_tmo: float = 30.0
    #: None: derived from the PVs (:meth:`pva_max_buffer`)
    pva_max_buffer_bytes: int | None = None
    max_channels: int = 200_000
    fd_reserve: int = 64

    @classmethod
    def from_env(cls, env: Mapping[str, str], ca_max_array_bytes: int = 16384,
                 source: str = "<environment>", ca_conn_tmo: float = 30.0) -> Limits:
        """Read the PODIOC_* limits; bad values name the fix. The EPICS variables come
        parsed from the settings (config's ``epics:`` block, then the environment)."""
        buffer = _number(env, "PODIOC_PVA_MAX_BUFFER_BYTES", 0, 65536, source)
        return cls(
            max_clients=int(_number(env, "PODIOC_MAX_CLIENTS", cls.max_clients, 1, source)),
            ca_max_array_bytes=ca_max_array_bytes,
            dead_peer_timeout=_number(env, "PODIOC_DEAD_PEER_TIMEOUT", cls.dead_peer_timeout,
                                      2, source, integer=False),
            ca_conn_tmo=ca_conn_tmo,
            pva_max_buffer_bytes=int(buffer) or None,
            max_channels=int(_number(env, "PODIOC_MAX_CHANNELS", cls.max_channels, 1,
                                     source)),
            fd_reserve=int(_number(env, "PODIOC_FD_RESERVE", cls.fd_reserve, 16, source)))

    def ca_max_payload(self, pvs: Iterable[PV] = ()) -> int:
        """Largest CA payload accepted from a client, in bytes."""
        largest = max((pv_bytes(pv) for pv in pvs), default=0)
        return max(self.ca_max_array_bytes, largest) + _DBR_ROOM

    def pva_max_buffer(self, pvs: Iterable[PV] = ()) -> int:
        """Unprocessed bytes one PVA connection may have sent."""
        if self.pva_max_buffer_bytes is not None:
            return self.pva_max_buffer_bytes
        largest = max((pv_bytes(pv) for pv in pvs), default=0)
        return max(PVA_BUFFER_FLOOR, 2 * largest + 8 * 2**20)

    def channel_budget(self, pv_count: int) -> int:
        """Channels open at once over both protocols (at least 4 per PV)."""
        return max(self.max_channels, 4 * pv_count)
