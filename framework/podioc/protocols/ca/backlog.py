"""One circuit's unsent monitor updates: bounded, counted in bytes, fair under overload.

- each subscription keeps at most :data:`SUBSCRIPTION_BACKLOG` updates (the
  newest; caproto keeps 1,000) and ~1 MiB of them;
- while the client's socket is backed up (more than :data:`CONGESTED_BYTES`
  unread), a subscription keeps only its newest update;
- the updates waiting here plus those in the socket buffer stay below the
  circuit's byte budget: beyond it the waiting updates of the subscriptions
  sent most recently are dropped first (they take turns; none starves), and
  each dropped subscription is *stale*: it gets its newest value once the
  client reads again (see ``context.ServerContext.resync_loop``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

#: Updates one subscription may have waiting to be sent; older ones are dropped.
#: Enough for a 1 ms batch at tens of kHz, small enough that a client never
#: receives more than this many stale values.
SUBSCRIPTION_BACKLOG = 64
#: ... and at most this many bytes of them (a large array keeps only the newest).
SUBSCRIPTION_BACKLOG_BYTES = 1 << 20
#: A socket send buffer above this means the client is not keeping up.
CONGESTED_BYTES = 256 * 2**10


@dataclass
class Waiting:
    """The updates of one subscription waiting to be sent."""

    sub_spec: Any
    sub: Any
    updates: collections.deque[Any]


@dataclass
class Backlog:
    """Pending updates per subscription id, their byte count and the stale set."""

    budget: int  # bytes: waiting here + unread in the socket
    pending: dict[int, Waiting] = field(default_factory=dict)
    nbytes: int = 0
    stale: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    dropped: int = 0  # updates dropped since the client last caught up
    turn: int = 0  # counts batches taken for sending
    served: dict[int, int] = field(default_factory=dict)  # subscription id -> its last batch

    def add(self, sub_spec: Any, sub: Any, command: Any, unread: int) -> bool:
        """Queue one update; False when it had to be dropped (the subscription is
        then stale). ``unread``: bytes in the client's socket buffer."""
        size = len(command)
        subid = sub.subscriptionid
        waiting = self.pending.get(subid)
        if waiting is not None:
            updates = waiting.updates
            if unread > CONGESTED_BYTES:  # not keeping up: only the newest update waits
                self.nbytes -= sum(len(c) for c in updates)
                updates.clear()
            elif updates.maxlen is not None and len(updates) == updates.maxlen:
                self.nbytes -= len(updates[0])  # the deque drops the oldest
        over = unread + self.nbytes + size - self.budget
        if over > 0:
            over = self._make_room(subid, over)
            if over > 0:  # no room even so: this one waits its turn
                self.dropped += 1
                self.stale[subid] = (sub_spec, sub)
                return False
        if waiting is None or subid not in self.pending:
            depth = min(SUBSCRIPTION_BACKLOG, sub.db_entry.max_subscription_backlog,
                        SUBSCRIPTION_BACKLOG_BYTES // size)
            waiting = Waiting(sub_spec, sub, collections.deque(maxlen=max(1, depth)))
            self.pending[subid] = waiting
        waiting.updates.append(command)
        self.stale.pop(subid, None)
        self.nbytes += size
        return True

    def _make_room(self, subid: int, over: int) -> int:
        """Drop the waiting updates of subscriptions sent more recently than
        ``subid`` until ``over`` bytes are freed; returns what is still over."""
        mine = self.served.get(subid, -1)
        victims = sorted((other for other in self.pending
                          if other != subid and self.served.get(other, -1) > mine),
                         key=lambda other: -self.served.get(other, -1))
        for other in victims:
            if over <= 0:
                break
            waiting = self.pending.pop(other)
            freed = sum(len(c) for c in waiting.updates)
            self.nbytes -= freed
            over -= freed
            self.stale[other] = (waiting.sub_spec, waiting.sub)
            self.dropped += 1
        return over

    def take(self, live: Any) -> list[Any]:
        """Every waiting update of a subscription in ``live`` (ids), oldest first,
        for one write; the backlog starts afresh."""
        pending, self.pending = self.pending, {}
        self.nbytes = 0
        if not pending:
            return []
        self.turn += 1
        for subid in pending:
            self.served[subid] = self.turn
        return [c for subid, waiting in pending.items() if subid in live
                for c in waiting.updates]

    def discard(self, subid: int) -> None:
        """A cancelled subscription: nothing of it may be sent any more."""
        waiting = self.pending.pop(subid, None)
        if waiting is not None:
            self.nbytes -= sum(len(c) for c in waiting.updates)
        self.stale.pop(subid, None)

    def park(self) -> list[tuple[Any, Any]]:
        """Events off: drop every waiting update; returns whose newest to resend later."""
        parked = [(w.sub_spec, w.sub) for w in self.pending.values()]
        self.clear()
        return parked

    def clear(self) -> None:
        self.pending.clear()
        self.nbytes = 0

    def take_stale(self) -> list[tuple[Any, Any]]:
        """The stale subscriptions (sub_spec, sub), now due for their newest value."""
        stale, self.stale = self.stale, {}
        self.dropped = 0
        return list(stale.values())

    def forget_served(self, live: set[int]) -> None:
        """Drop the send history of subscriptions that no longer exist."""
        self.served = {k: v for k, v in self.served.items() if k in live}
