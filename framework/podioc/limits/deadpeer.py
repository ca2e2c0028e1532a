"""Dropping clients that vanished: TCP keepalive and ``TCP_USER_TIMEOUT``.

A client whose link goes down never sends the FIN that would end its
connection, so without help the server keeps it (and its slot under the
client cap) forever. With a dead-peer timeout ``T`` (``PODIOC_DEAD_PEER_TIMEOUT``):

- an idle connection gets keepalive probes after ``T/2`` s, every ``T/8`` s,
  and is reset after 4 unanswered probes (~``T``);
- a connection with data the peer never acknowledges (a monitor still
  sending to it) is reset ``T`` s after the last acknowledgement
  (``TCP_USER_TIMEOUT``; without it Linux retries for ~15 minutes).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

#: Keepalive probes before the connection is reset.
PROBES = 4


def options(timeout: float) -> list[tuple[int, int, int]]:
    """(level, option, value) for :func:`socket.setsockopt`, where the platform has them."""
    idle = max(1, int(timeout / 2))
    interval = max(1, int(timeout / (2 * PROBES)))
    opts = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval),
                        ("TCP_KEEPCNT", PROBES), ("TCP_USER_TIMEOUT", int(timeout * 1000))):
        opt = getattr(socket, name, None)
        if opt is not None:
            opts.append((socket.IPPROTO_TCP, opt, value))
    return opts


def apply(sock: Any, timeout: float) -> None:
    """Set the dead-peer options on a connected TCP socket (errors are ignored)."""
    for level, opt, value in options(timeout):
        with contextlib.suppress(OSError):
            sock.setsockopt(level, opt, value)
