"""The autosave service's status PVs (AUTOSAVE_STATUS, AUTOSAVE_LAST_SAVE), which it adds
to the IOC's health PVs (any :class:`StatusBoard`; the runtime passes its ``Health``)."""

from __future__ import annotations

from typing import Protocol

from ..model import PV, PVSpec, Severity, Status, pv

#: Values of AUTOSAVE_STATUS.
STATES = ("OK", "NO_FILE", "RESTORED_FROM_BACKUP", "VALUES_SKIPPED", "RESTORE_FAILED",
          "SAVE_FAILED", "DISABLED")
ALARMS: dict[str, tuple[Severity, Status]] = {
    "OK": (Severity.NO_ALARM, Status.NO_ALARM),
    "NO_FILE": (Severity.NO_ALARM, Status.NO_ALARM),
    "RESTORED_FROM_BACKUP": (Severity.MINOR, Status.STATE),
    "VALUES_SKIPPED": (Severity.MINOR, Status.STATE),
    "RESTORE_FAILED": (Severity.MAJOR, Status.READ),
    "SAVE_FAILED": (Severity.MAJOR, Status.WRITE),
    "DISABLED": (Severity.NO_ALARM, Status.NO_ALARM),
}
STATUS_SPECS = {
    "AUTOSAVE_STATUS": pv.enum(list(STATES), "DISABLED", name="AUTOSAVE_STATUS",
                               description="Autosave restore outcome or SAVE_FAILED"),
    "AUTOSAVE_LAST_SAVE": pv.string("", name="AUTOSAVE_LAST_SAVE",
                                    description="Autosave file last written (UTC)"),
}

class StatusBoard(Protocol):
    """Where a service shows its state: the IOC's health PVs."""

    def add(self, spec: PVSpec) -> PV:
        """Serve ``spec`` as one more health PV (``prefix + spec.name``); the live PV."""
        ...


def add_status_pvs(board: StatusBoard) -> dict[str, PV]:
    """Add AUTOSAVE_STATUS and AUTOSAVE_LAST_SAVE to ``board`` (in that order)."""
    return {key: board.add(spec) for key, spec in STATUS_SPECS.items()}
