"""Resource limits: what one client, or all of them, may cost the IOC.

- :mod:`.resources`: bounded-resource settings (client cap, CA message size),
  :class:`~.resources.Limits`, and :func:`~.resources.pv_bytes`.
- :mod:`.ratelimit`: bounded logging, so a client cannot flood the IOC's log.

The protocol adapters enforce them (``protocols/ca/limits.py``,
``protocols/pva/access.py``); who may read or write which PV is
:mod:`podioc.access`.
"""
