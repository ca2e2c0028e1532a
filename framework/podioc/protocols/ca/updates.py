"""Monitor updates on their way from a channel to the circuits that subscribe.

- :class:`CoalescingQueue` is the context's queue of channel updates: while
  an update of a channel (for one data type) waits, a newer one replaces it
  (caproto queues every one, so a flood queues stale news);
- :func:`event_add_response` builds the update message, reusing a large array
  already in wire (big-endian) form instead of converting it a second time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import caproto as ca
import numpy as np
from caproto import ChannelType, backend, native_type

from .guard import EventAddResponseHeader, ensure_eca_value, pad_buffers, parse_metadata

#: Arrays with at least this many bytes go on the wire without a second copy.
ZERO_COPY_BYTES = 1 << 12
_ECA_NORMAL = ensure_eca_value(1)


def wire_view(values: Any, data_type: Any) -> memoryview | None:
    """``values`` as bytes on the wire without a copy, when it already is a large,
    contiguous array of the wire's (big-endian) type, as caproto's conversion
    for a read or an update returns it; else None."""
    if not (isinstance(values, np.ndarray) and values.nbytes >= ZERO_COPY_BYTES
            and values.flags.c_contiguous):
        return None
    if values.dtype != backend.type_map.get(native_type(ChannelType(data_type))):
        return None
    return memoryview(values).cast("B")  # type: ignore[arg-type]


def event_add_response(values: Any, metadata: Any, data_type: Any, data_count: int,
                       subscriptionid: int) -> Any:
    """caproto's ``EventAddResponse`` (status normal). caproto converts the data
    for the wire once more when it builds the message (``astype`` always
    copies); for a large array already in wire form this one uses it as is."""
    view = wire_view(values, data_type)
    if view is None:
        return ca.EventAddResponse(values, data_type, data_count, 1, subscriptionid,
                                   metadata=metadata)
    md_payload = parse_metadata(metadata, ChannelType(data_type))
    size, pad = pad_buffers(md_payload, view)
    header = EventAddResponseHeader(size, data_type, data_count, _ECA_NORMAL, subscriptionid)
    buffers = (md_payload, view, pad) if pad else (md_payload, view)
    return ca.EventAddResponse.from_components(header, *buffers)


class CoalescingQueue:
    """The context's queue of channel updates: while an update of a channel (for
    one data type) waits, a newer one replaces it and moves to the back.

    Updates for one new subscription (its first value) are always kept. Used by
    caproto's ``ChannelData.publish``/``subscribe`` through ``put``.
    """

    def __init__(self) -> None:
        self._items: dict[Any, Any] = {}
        self._ready = asyncio.Event()
        self._serial = 0

    def put_nowait(self, update: Any) -> None:
        if update.sub is None:
            key: Any = update.sub_specs
            old = self._items.pop(key, None)
            if old is not None:
                update = update._replace(flags=update.flags | old.flags)
        else:
            self._serial += 1
            key = ("first", self._serial)
        self._items[key] = update
        self._ready.set()

    async def put(self, update: Any) -> None:
        self.put_nowait(update)

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        key = next(iter(self._items))
        return self._items.pop(key)
