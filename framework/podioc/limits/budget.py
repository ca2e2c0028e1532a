"""A process-wide channel budget, shared by both protocols.

The per-client limits bound one client; many clients together could still
push the IOC past its container's memory limit (~1.4 KB per CA channel).
Each protocol registers a counter of its open channels; a new channel is
refused while their sum is at ``PODIOC_MAX_CHANNELS``. Channels already open
keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class ChannelBudget:
    """At most ``limit`` channels open at once over every registered protocol."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.refused = 0
        self._counters: dict[str, Callable[[], int]] = {}

    def register(self, protocol: str, count: Callable[[], int]) -> None:
        """``count()`` returns the channels ``protocol`` has open now."""
        self._counters[protocol] = count

    def used(self) -> int:
        return sum(count() for count in self._counters.values())

    def full(self, counted: bool = False) -> bool:
        """True when one more channel may not open (what :meth:`admit` refuses),
        with nothing logged or counted. ``counted``: as for :meth:`admit`."""
        return self.used() - (1 if counted else 0) >= self.limit

    def admit(self, protocol: str, name: str, who: str, counted: bool = False) -> str:
        """'' if one more channel may open, else why not (logged, rate-limited).
        ``counted``: the protocol's counter already includes this channel."""
        if not self.full(counted):
            return ""
        used = self.used() - (1 if counted else 0)
        self.refused += 1
        reason = (f"channel budget exhausted: {used} channels open over all clients "
                  f"(PODIOC_MAX_CHANNELS={self.limit}); close channels or raise it")
        log.warning("%s channel %s refused to %s: %s", protocol, name, who, reason)
        return reason
