"""Access rules and the client cap on PVAccess (p4p).

What p4p lets a Python server see, and so what podioc enforces:

- **channel creation** (``DynamicProvider.makeChannel(name, peer)``): the
  client's address only. A client whose address gets no READ from the rules
  for any user is refused the channel (it cannot get or monitor). A rule that
  grants READ to some users (UAG) only cannot be checked here: p4p does not
  pass the account to channel creation, and SharedPV answers gets and
  monitors itself. So on PVA, read rights are per host; write rights below
  are per user and host.
- **put** (``ServerOperation.peer()`` and ``.account()``): refused with an
  error unless the rules grant WRITE to that account at that address.
- a SIGHUP reload applies to every later channel and put; channels already
  open keep reading (PVA has no way to revoke a channel from p4p).
- **channel budget**: a channel beyond the process-wide budget
  (``PODIOC_MAX_CHANNELS``) is refused ("Refused to create Channel").
- the client cap, keepalive and message-size bound are
  :mod:`.connections`' (outside pvxs, which has no hooks for them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from p4p.server import DynamicProvider

from ...access.acf import Access
from ...access.hosts import peer_ip
from ...access.policy import AccessPolicy
from ...errors import PutRefused
from ...limits.budget import ChannelBudget
from ...model.state import PV

log = logging.getLogger(__name__)

class _Channels:
    """``DynamicProvider`` handler: the SharedPVs, minus channels the rules or the
    channel budget refuse."""

    def __init__(self, shared: Mapping[str, Any], policy: AccessPolicy | None,
                 budget: ChannelBudget | None, made: Callable[[], None] | None) -> None:
        self.shared = shared
        self.policy = policy
        self.budget = budget
        self.made = made

    def testChannel(self, name: str) -> bool:
        return name in self.shared

    def makeChannel(self, name: str, peer: str) -> Any:
        if name not in self.shared:  # not ours (a record field: the next provider's);
            return None              # p4p asks every provider, whatever testChannel said
        if (self.policy is not None
                and self.policy.current.rights(name, None, peer_ip(peer)) is Access.NONE):
            log.warning("PVA channel %s refused to %s: no read access", name, peer)
            return None  # p4p answers the client "Refused to create Channel"
        if self.budget is not None and self.budget.admit("PVA", name, peer):
            return None
        if self.made is not None:
            self.made()
        return self.shared[name]  # made now if it is the name's first channel


def make_provider(shared: Mapping[str, Any], policy: AccessPolicy | None,
                  budget: ChannelBudget | None = None,
                  made: Callable[[], None] | None = None) -> Any:
    """What to give p4p's ``Server(providers=[...])``; keep a reference to it.

    A DynamicProvider: ``shared`` makes a PV's SharedPV when a client first asks
    for it (:class:`.channels.Bindings`). ``made()`` is called for each channel
    created.
    """
    return DynamicProvider("podioc-access", _Channels(shared, policy, budget, made))


def put_guard(policy: AccessPolicy | None) -> Callable[[PV, Any], None] | None:
    """A check run before each PVA put: raises PutRefused without WRITE."""
    if policy is None:
        return None

    def guard(pv: PV, op: Any) -> None:
        peer = str(op.peer())
        account = str(op.account())
        access, trap = policy.current.decide(pv.name, account, peer_ip(peer))
        if access < Access.WRITE:
            log.info("PVA put to %s refused: %s at %s has no write access", pv.name,
                     account, peer)
            raise PutRefused(f"{pv.name}: no write access for {account} at {peer_ip(peer)}")
        if trap:
            log.info("TRAPWRITE: PVA put to %s by %s at %s", pv.name, account, peer)

    return guard
