"""PVs that follow a device connection: COMM alarm and refused puts while it is down.

```python
self.link = DeviceLink(self.psu, [self.voltage, self.setpoint],
                       connected=self.connected, refresh=self._read_back)
```

While the connection is down (and before it first comes up) every linked PV
is INVALID/COMM with the reason as its alarm message (PVA's
``alarm.message``), and a client's put to a linked PV is refused with
``device not connected: ...``. When the connection comes back, ``refresh``
is awaited to re-read the device's values; only then do the alarms clear
and puts pass again. A refresh that fails drops the connection, which is
retried with backoff, so clients never see stale values without an alarm.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..errors import DeviceError, PutRefused
from ..model import PV, Severity, Status
from .connection import Connection

log = logging.getLogger("podioc.io")

Refresh = Callable[[], Awaitable[None]]


class DeviceLink:
    """Bind ``pvs`` to ``connection``; ``connected`` (a bool PV) shows the state.

    Create it in the IOC's ``__init__`` (after ``super().__init__``), before
    the connection is started. ``refresh`` re-reads the device after every
    (re)connection; it may use ``connection.request`` (the connection is up
    while it runs).
    """

    def __init__(self, connection: Connection, pvs: Iterable[PV], *,
                 connected: PV | None = None, refresh: Refresh | None = None) -> None:
        self.connection = connection
        self.pvs = [live for live in pvs if live is not connected]
        self.connected_pv = connected
        self.refresh = refresh
        self._ready = False
        for live in self.pvs:
            live.validators.insert(0, self._refuse_while_down)
        connection.on_connect(self._came_up)
        connection.on_disconnect(self._went_down)
        self._show_down(connection.reason or "not connected yet")

    @property
    def ready(self) -> bool:
        """True once connected and refreshed, until the connection is lost."""
        return self._ready and self.connection.connected

    def add(self, live: PV) -> None:
        """Link one more PV (e.g. one added at run time)."""
        self.pvs.append(live)
        live.validators.insert(0, self._refuse_while_down)
        if not self._ready:
            live.set_alarm(Severity.INVALID, Status.COMM, self._message())

    async def _refuse_while_down(self, value: Any) -> None:
        if not self.ready:
            raise PutRefused(self._message())

    def _message(self) -> str:
        reason = self.connection.reason or "reconnected; re-reading the device"
        return f"device not connected: {self.connection.name}: {reason}"

    async def _came_up(self) -> None:
        if self.refresh is not None:
            try:
                await self.refresh()
            except DeviceError:
                raise  # the connection logs it, drops and retries with backoff
            except Exception as exc:
                log.exception("%s: refresh after connecting failed", self.connection)
                raise DeviceError(f"refresh failed: {exc!r}") from exc
        if not self.connection.connected:  # lost again while refreshing
            return
        self._ready = True
        for live in self.pvs:
            live.set_alarm(Severity.NO_ALARM, Status.NO_ALARM)
        if self.connected_pv is not None:
            self.connected_pv.value = True
        log.info("%s: %d PVs connected", self.connection, len(self.pvs))

    def _went_down(self, reason: str) -> None:
        self._show_down(reason)

    def _show_down(self, reason: str) -> None:
        self._ready = False
        message = f"device not connected: {reason}"
        for live in self.pvs:
            live.set_alarm(Severity.INVALID, Status.COMM, message)
        if self.connected_pv is not None:
            self.connected_pv.value = False
