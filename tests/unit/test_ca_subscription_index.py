"""protocols/ca/subscriptions.py: the index that makes cancelling a subscription O(1)."""

from __future__ import annotations

from collections import defaultdict, deque
from types import SimpleNamespace
from typing import Any

from caproto import ChannelType, SubscriptionType

from podioc.protocols.ca.guard import SubscriptionSpec
from podioc.protocols.ca.subscriptions import SubscriptionIndex


def _add(subs: dict[Any, Any], index: SubscriptionIndex, chan: Any, sid: int) -> Any:
    command = SimpleNamespace(data_type=ChannelType.DOUBLE, mask=SubscriptionType.DBE_VALUE,
                              subscriptionid=sid)
    spec = SubscriptionSpec(db_entry="entry", data_type_name="DOUBLE",
                            mask=SubscriptionType.DBE_VALUE, channel_filter=chan.channel_filter)
    sub = SimpleNamespace(subscriptionid=sid, channel=chan)
    subs[spec].append(sub)
    index.added(chan, "entry", command)
    return spec, sub


def test_find_forget_and_liveness() -> None:
    subs: dict[Any, Any] = defaultdict(deque)
    index = SubscriptionIndex(subs)
    chan_a = SimpleNamespace(name="A", channel_filter=None)
    chan_b = SimpleNamespace(name="B", channel_filter=None)
    pairs = [_add(subs, index, chan_a if i % 2 else chan_b, i) for i in range(10)]
    assert index.find(3) == pairs[3]
    assert index.find(99) is None
    assert sorted(p[1].subscriptionid for p in index.of_channel(chan_a)) == [1, 3, 5, 7, 9]
    spec, sub = pairs[4]
    assert index.is_live(spec, sub)
    subs[spec].remove(sub)
    index.forget([pairs[4]])
    assert not index.is_live(spec, sub)
    assert index.find(4) is None
    assert 4 not in [p[1].subscriptionid for p in index.of_channel(chan_b)]


def test_subscription_being_made_is_live_before_it_is_indexed() -> None:
    subs: dict[Any, Any] = defaultdict(deque)
    index = SubscriptionIndex(subs)
    chan = SimpleNamespace(name="A", channel_filter=None)
    spec = SubscriptionSpec(db_entry="entry", data_type_name="DOUBLE",
                            mask=SubscriptionType.DBE_VALUE, channel_filter=None)
    sub = SimpleNamespace(subscriptionid=7, channel=chan)
    subs[spec].append(sub)
    assert not index.is_live(spec, sub)
    index.pending = 7
    assert index.is_live(spec, sub)


def test_long_string_channels_fall_back_to_a_scan() -> None:
    subs: dict[Any, Any] = defaultdict(deque)
    index = SubscriptionIndex(subs)
    chan = SimpleNamespace(name="A.DESC$", channel_filter=None)
    spec, sub = _add(subs, index, chan, 1)
    assert index.is_live(spec, sub)
    assert index.find(1) == (spec, sub)
    assert index.of_channel(chan) == [(spec, sub)]
