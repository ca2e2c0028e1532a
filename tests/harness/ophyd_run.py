"""Run the ophyd-async PVI client (``ophyd_pvi.py``) against an IOC process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .ioc_process import IocProcess

OPHYD_CLIENT = Path(__file__).resolve().parent / "ophyd_pvi.py"


def ophyd(ioc: IocProcess, *sets: str) -> dict[str, Any]:
    """Build a device from ``ioc``'s PVI alone, apply ``sets`` (PATH=JSON); the report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env.update(ioc.pva_conf())
    proc = subprocess.run([sys.executable, str(OPHYD_CLIENT), ioc.prefix, *sets], env=env,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report
