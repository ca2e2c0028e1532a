"""The running IOC: one asyncio loop hosting both servers, scans and hooks.

- :mod:`.server`: :class:`~.server.Runtime`, start-up, serving and clean shutdown;
- :mod:`.app`: the body of ``podioc run`` (config -> IOC, settings, services);
- :mod:`.scans`: periodic scan methods; :mod:`.health`: the health PVs, with the
  iocStats names in :mod:`.iocstats` and the figures behind them in :mod:`.sysinfo`;
- :mod:`.settings`: the EPICS_* server settings, read once at start-up;
- :mod:`.target`, :mod:`.loader`: a CLI target to instance config and IOC class.
"""
