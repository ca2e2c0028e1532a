"""Regression guard for idle CPU: the PVA client cap does not rescan an idle server.

Reading the kernel's TCP table once a second was most of an idle IOC's CPU
(py-spy, 10,000 PVs: 64 % of its samples). The cap now rescans only when the
process opened or closed a socket since its last scan. Counted, not timed.
"""

from __future__ import annotations

import socket

from podioc.limits.resources import Limits
from podioc.protocols.pva.access import ConnectionCap


def test_an_unchanged_set_of_sockets_is_not_rescanned() -> None:
    cap = ConnectionCap(Limits(), port=1)
    for _ in range(5):
        cap.check()
    assert cap.scans == 1


def test_a_new_or_closed_socket_triggers_a_rescan() -> None:
    cap = ConnectionCap(Limits(), port=1)
    cap.check()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        cap.check()
        assert cap.scans == 2
        cap.check()
        assert cap.scans == 2
    cap.check()
    assert cap.scans == 3
