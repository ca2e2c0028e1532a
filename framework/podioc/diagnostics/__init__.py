"""Looking at an IOC instance from outside the running server.

- :mod:`.doctor`: can beamline clients find an IOC started here (``podioc doctor``)?
- :mod:`.probe`: is the IOC with this prefix alive (``podioc probe``)?
- :mod:`.describe`: every PV an instance would serve (``podioc describe``).
"""
