"""A writable float with no limits of any kind, for EPICS base's ``acctst``.

acctst writes values up to FLT_MAX and DBL_MAX and reads them back, so the PV
must take any double.
"""

from __future__ import annotations

from podioc import IOC, pv


class Unrestricted(IOC):
    """X: a writable float without limits."""

    x = pv.float(0.0, name="X", precision=0, writable=True, description="acctst target")
