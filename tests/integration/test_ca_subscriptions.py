"""CA subscriptions added and cancelled in quick succession keep every monitor alive.

EPICS base's CA acceptance test (``acctst``) adds a subscription, cancels it
and adds another without waiting for replies. The first subscription's
initial value was still on its way to the circuit's send loop when the
cancel arrived; sending it for a subscription that no longer existed raised
``LocalProtocolError: Unrecognized subscriptionid`` inside the loop, which
ended it: from then on no subscription on that connection got an update, and
the client was told nothing. Here the sequence is sent in one TCP write, a
thousand times over one connection, while a long-lived subscription watches.
"""

from __future__ import annotations

from collections.abc import Callable

from harness import IocProcess
from harness.rawca import Message, WireClient, is_cancel_reply, is_update

REPETITIONS = 1000


def carries(subid: int, value: float) -> Callable[[Message], bool]:
    """Matches an update of ``subid`` carrying ``value``."""
    return lambda m: is_update(subid)(m) and m.double() == value


def test_add_cancel_add_keeps_every_subscription_updating(allkinds: IocProcess) -> None:
    with WireClient(allkinds.ca_port) as client:
        _, sid, _ = client.connect(allkinds.pv("DRIVE"))
        canary = client.new_id()
        client.send(client.event_add(sid, canary))
        client.wait_for(is_update(canary), "the canary's first value")
        cancelled_seen_after_cancel = 0
        for i in range(REPETITIONS):
            first, second = client.new_id(), client.new_id()
            client.send(client.event_add(sid, first), client.event_cancel(sid, first),
                        client.event_add(sid, second))
            first_cancelled = client.wait_for(is_cancel_reply(first),
                                              f"the cancel reply of #{i}").seq
            client.wait_for(is_update(second), f"the first value of #{i}'s second subscription")
            value = float(i % 40)
            client.put(sid, value)
            got = client.wait_for(carries(second, value),
                                  f"update {value} on #{i}'s second subscription")
            assert got.double() == value
            client.wait_for(carries(canary, value), f"update {value} on the canary (#{i})")
            client.send(client.event_cancel(sid, second))
            second_cancelled = client.wait_for(is_cancel_reply(second),
                                               f"the cancel reply of #{i}'s second").seq
            # Nothing of a cancelled subscription may follow its cancel reply (its
            # first value may come before it, as from EPICS base's rsrv).
            cancelled_seen_after_cancel += sum(m.seq > first_cancelled
                                               for m in client.take(is_update(first)))
            cancelled_seen_after_cancel += sum(m.seq > second_cancelled
                                               for m in client.take(is_update(second)))
        assert cancelled_seen_after_cancel == 0
    assert allkinds.alive()
    log = allkinds.log_text()
    for bad in ("Unrecognized subscriptionid", "Task exception was never retrieved",
                "Traceback"):
        assert bad not in log, f"{bad!r} in the IOC log:\n{log[-3000:]}"


def test_first_value_of_a_new_subscription_is_the_newest(allkinds: IocProcess) -> None:
    """A new subscription's first value is answered in place from a cached encoding
    (fastpath); after a change it must carry the new value, never the cached old one,
    and every one of many same-type subscriptions keeps getting updates."""
    with WireClient(allkinds.ca_port) as client:
        _, sid, _ = client.connect(allkinds.pv("DRIVE"))
        subs: list[int] = []
        for i in range(50):
            value = float(i - 25)
            client.put(sid, value)
            subid = client.new_id()
            client.send(client.event_add(sid, subid))
            subs.append(subid)
            first = client.wait_for(is_update(subid), f"the first value of subscription {i}")
            assert first.double() == value, f"subscription {i}: stale first value"
            # several more in one write: each first value is the same, newest one
            batch = [client.new_id() for _ in range(5)]
            client.send(*(client.event_add(sid, b) for b in batch))
            subs.extend(batch)
            for b in batch:
                assert client.wait_for(is_update(b), "a batched first value").double() == value
        client.take(lambda m: True)
        client.put(sid, 7.0)
        for subid in subs:  # every subscription is registered for updates
            client.wait_for(carries(subid, 7.0), f"update 7.0 on subscription {subid}")
        client.send(*(client.event_cancel(sid, s) for s in subs))
        for subid in subs:
            client.wait_for(is_cancel_reply(subid), f"the cancel reply of {subid}")
        client.put(sid, 8.0)
        canary = client.new_id()
        client.send(client.event_add(sid, canary))
        assert client.wait_for(is_update(canary), "the canary's first value").double() == 8.0
        assert not client.take(lambda m: m.p2 in subs and bool(m.payload))
    assert "Traceback" not in allkinds.log_text()
