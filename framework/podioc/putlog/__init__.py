"""The put log, like EPICS's caPutLog: one JSON line per accepted or refused client put.

Both protocol adapters call :meth:`PutLog.record` (CA in
:mod:`podioc.protocols.ca.puts` and :mod:`~podioc.protocols.ca.access` through
:mod:`podioc.protocols.ca.putlog`, PVA in :mod:`podioc.protocols.pva.channels`
and :mod:`~podioc.protocols.pva.fields`); the runtime builds it from the
instance config's ``put_log:`` block (:mod:`.settings`). Lines are coalesced
per PV and client (:mod:`.coalesce`), formatted with caPutLog's JSON field
names (:mod:`.lines`) and written by a thread (:mod:`.writer`) to standard
output, a rotated file or a TCP log server (:mod:`.sinks`).
"""

from .service import PutLog
from .settings import PutLogSettings

__all__ = ["PutLog", "PutLogSettings"]
