"""A circuit's monitor subscriptions by id, so that cancelling one is cheap.

caproto finds the subscription a client cancels by testing every subscription
of the circuit, then removes it from deques of all subscriptions sharing its
channel and type: with N subscriptions, cancelling them all costs O(N²)
Python calls (EPICS base's ``acctst`` makes thousands on one channel and took
15 minutes). Here a subscription is looked up by id; the removal does what
caproto's ``_cull_subscriptions`` does, for the found pairs only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from caproto import ChannelType

from .guard import SubscriptionSpec

Pair = tuple[Any, Any]  # (SubscriptionSpec, Subscription)


class SubscriptionIndex:
    """subscription id -> (spec, subscription) over a circuit's ``subscriptions``."""

    def __init__(self, subscriptions: dict[Any, Any]) -> None:
        self._subscriptions = subscriptions  # caproto's {spec: deque of subscriptions}
        self._by_id: dict[int, Pair] = {}
        self._by_channel: dict[int, dict[int, Pair]] = {}  # id(channel) -> id -> pair
        #: Id of the subscription caproto is making (indexed once it returns).
        self.pending: int | None = None

    def added(self, chan: Any, db_entry: Any, command: Any) -> None:
        """Record the subscription caproto just made for ``command`` (an
        EventAddRequest). Its spec is rebuilt as caproto builds it; for long-string
        channels (name ending ``$``), which caproto keys differently, :meth:`find`
        falls back to a scan."""
        if chan.name.endswith("$"):
            return
        spec = SubscriptionSpec(db_entry=db_entry,
                                data_type_name=ChannelType(command.data_type).name,
                                mask=command.mask, channel_filter=chan.channel_filter)
        subs = self._subscriptions.get(spec)
        if subs and subs[-1].subscriptionid == command.subscriptionid:
            self.add(spec, subs[-1])

    def add(self, spec: Any, sub: Any) -> None:
        """Index a subscription made outside caproto (see :mod:`.fastpath`)."""
        pair = (spec, sub)
        self._by_id[sub.subscriptionid] = pair
        self._by_channel.setdefault(id(sub.channel), {})[sub.subscriptionid] = pair

    def indexed(self, subscriptionid: int) -> Pair | None:
        """The subscription with this id if it is indexed (no scan), or None."""
        return self._by_id.get(subscriptionid)

    def find(self, subscriptionid: int) -> Pair | None:
        """The live subscription with this id, or None."""
        pair = self._by_id.get(subscriptionid)
        if pair is None:
            self._rebuild()
            pair = self._by_id.get(subscriptionid)
        return pair

    def is_live(self, spec: Any, sub: Any) -> bool:
        """True while ``sub`` is subscribed (O(1); caproto tests deque membership)."""
        pair = self._by_id.get(sub.subscriptionid)
        if pair is not None:
            return pair[1] is sub
        if sub.channel.name.endswith("$") or sub.subscriptionid == self.pending:
            return sub in self._subscriptions.get(spec, ())  # not indexed (yet)
        return False

    def of_channel(self, chan: Any) -> list[Pair]:
        """The live subscriptions of one channel (of this circuit)."""
        if chan.name.endswith("$"):
            self._rebuild()
        pairs = self._by_channel.get(id(chan), {})
        return [pair for pair in pairs.values() if pair[1].channel is chan]

    def forget(self, pairs: Iterable[Pair]) -> None:
        """Drop removed subscriptions from the index."""
        for _, sub in pairs:
            self._by_id.pop(sub.subscriptionid, None)
            by_chan = self._by_channel.get(id(sub.channel))
            if by_chan is not None:
                by_chan.pop(sub.subscriptionid, None)
                if not by_chan:
                    del self._by_channel[id(sub.channel)]

    def _rebuild(self) -> None:
        self._by_id, self._by_channel = {}, {}
        for spec, subs in self._subscriptions.items():
            for sub in subs:
                self.add(spec, sub)


def detach(circuit: Any, spec: Any, sub: Any) -> bool:
    """Remove one subscription from a circuit and its context as caproto's
    ``_cull_subscriptions`` does; True when no subscription of its spec is left
    (the context's queue must then be unsubscribed from the channel)."""
    context = circuit.context
    circuit.subscriptions[spec].remove(sub)
    resends = circuit.subscriptions_to_resend.get(spec)
    if resends and sub in resends:
        resends.remove(sub)
    context.subscriptions[spec].remove(sub)
    context.last_dead_band.pop(sub, None)
    context.last_sync_edge_update.pop(sub, None)
    return not context.subscriptions[spec]


async def remove_subscriptions(circuit: Any, pairs: Iterable[Pair]) -> None:
    """:func:`detach` each pair; unsubscribe the context's queue from a channel
    when no subscription of that spec is left."""
    for spec, sub in pairs:
        if detach(circuit, spec, sub):
            await spec.db_entry.unsubscribe(circuit.context.subscription_queue, spec)
