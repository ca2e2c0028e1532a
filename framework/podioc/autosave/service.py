"""The live autosave service: restore before serving; save on change, periodically and at stop.

**Which PVs**: those declared ``autosave=True``, plus the instance config's
``autosave.pvs``, minus ``autosave.exclude`` (see
:mod:`podioc.autosave.settings`). Read-only PVs may be named too.

**Restore** (:meth:`Autosave.attach`, after the IOC is created and before
startup hooks run and servers start, so no client ever sees a pre-restore
value; PVs that startup hooks add are restored by :meth:`Autosave.adopt`
right after the hooks, still before serving): the current file is read; if
it is missing or corrupt, the newest valid generation is used. Each saved
value must pass the type and limit rules of a client put (``spec.coerce``
then ``spec.within_limits``); a value that
fails is skipped, and the PV keeps its initial value, with a warning naming
the PV, the value and the reason. Metadata fields a client wrote at run time
(``NAME.EGU``, ``NAME.HIHI``...: only those that differ from the declaration)
are saved as ``NAME.FIELD`` lines and restored after the values, through the
same checks as a client's write. User validators and ``on_put`` hooks are
*not* called: validators may depend on state that does not exist yet (a
measured value, a device connection), and startup hooks, which run after
the restore and see the restored values, are the place to send them to
hardware. A corrupt current file is moved to ``NAME.sav.bad``.

**Saving**: a change of a saved PV (from a client or from IOC code) is written
at most ``debounce`` seconds later (changes in that window are coalesced into
one write, so a PV that changes continuously is still saved every
``debounce`` s); every ``period`` seconds a failed save is retried and a
deleted file recreated; identical contents are not rewritten. The last save
happens right after puts are closed at shutdown, *before* shutdown hooks, so
the file holds the operator's last settings rather than any safe state a
shutdown hook sets. File writes run in a thread, never blocking the loop.

**Status PVs**: the service adds its own two PVs to the IOC's health PVs
(any :class:`StatusBoard`; the runtime passes its ``Health``):
``AUTOSAVE_STATUS`` is the restore outcome (OK, NO_FILE, RESTORED_FROM_BACKUP,
VALUES_SKIPPED, RESTORE_FAILED, DISABLED), replaced by SAVE_FAILED (MAJOR
alarm) while saves fail; ``AUTOSAVE_LAST_SAVE`` is the UTC time the file was
last written (at start: when the restored file was written).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._version import __version__
from ..config import InstanceConfig
from ..errors import ConfigError, PutRefused
from ..model import IOC, PV, Severity, Status
from ..model.metadata import changed_fields
from ..model.records import split_field
from ..util.threads import in_daemon_thread
from . import fileformat, starts
from .settings import ENV_DIR, AutosaveSettings, file_name_for
from .status import ALARMS, StatusBoard, add_status_pvs
from .store import AutosaveStore, Loaded, StoreLocked
from .values import check_restorable, saveable, shown, utc

log = logging.getLogger(__name__)

#: Seconds the final save at shutdown may take before the IOC exits without it.
FLUSH_TIMEOUT = 10.0

SavedHook = Callable[[dict[str, Any]], None]


class Autosave:
    """Autosave of one IOC instance. ``attach`` (restore), ``run`` (task), ``stop``."""

    def __init__(self, settings: AutosaveSettings) -> None:
        self.settings = settings
        self.store: AutosaveStore | None = None
        self.pvs: dict[str, PV] = {}
        self.restore_status = "DISABLED"
        self.last_save: float | None = None
        #: Called with the saved values after every successful write (in the loop).
        self.saved_hooks: list[SavedHook] = []
        self.prefix = ""
        self._status_pvs: dict[str, PV] = {}
        self._unintended_disable = False
        self._failed = False
        self._stopped = False
        self._last_lines: str | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._unsubscribe: list[Callable[[], None]] = []
        #: saved values whose PV did not exist at attach (startup hooks may add it)
        self._pending: dict[str, Any] = {}
        self._defer = False
        self._skipped = 0
        self._tried_store = False

    @classmethod
    def from_config(cls, cfg: InstanceConfig, env: Mapping[str, str]) -> Autosave:
        """Validate the config's ``autosave:`` block (and ``PODIOC_AUTOSAVE_DIR``)."""
        return cls(AutosaveSettings.from_config(cfg.autosave, cfg.source, cfg.base_dir, env))

    @property
    def active(self) -> bool:
        """True when values are being saved."""
        return self.store is not None

    @property
    def status(self) -> str:
        """What AUTOSAVE_STATUS shows."""
        return "SAVE_FAILED" if self._failed else self.restore_status

    # -- start ---------------------------------------------------------------
    def attach(self, ioc: IOC, health: StatusBoard | None = None, *,
               defer_unknown: bool = False) -> None:
        """Add the status PVs to ``health`` (none without it), choose the PVs,
        take the files and restore; the status PVs show the outcome.

        Call before startup hooks and servers. Raises :class:`ConfigError` for
        unknown PV names or an explicitly configured directory that is unusable;
        with ``defer_unknown`` (startup hooks may still add PVs) names not found
        yet are settled by :meth:`adopt`, which must then be called.
        """
        self.prefix = ioc.prefix
        self._defer = defer_unknown
        self._status_pvs = add_status_pvs(health) if health is not None else {}
        selected = self._select(ioc) if self.settings.enabled else {}
        if not self.settings.enabled:
            log.info("autosave disabled by the instance config")
        elif not selected:
            if not self._defer:  # else adopt() says so once startup hooks ran
                log.info("no PVs to autosave (none declared autosave=True or listed "
                         "in autosave.pvs)")
        else:
            self._tried_store = True
            self.store = self._open_store()
        if self.store is not None:
            self.pvs = selected
            self._restore(ioc, self.store.load())
            self._watch(selected.values())
        self._show_status()
        if self.last_save is not None and "AUTOSAVE_LAST_SAVE" in self._status_pvs:
            self._status_pvs["AUTOSAVE_LAST_SAVE"].set(utc(self.last_save))

    def adopt(self, ioc: IOC) -> None:
        """After startup hooks: autosave the PVs they added (restored from the file
        read at :meth:`attach`, before serving). Raises :class:`ConfigError` for
        names in ``autosave.pvs``/``exclude`` that still name no PV."""
        self._defer = False
        if not self.settings.enabled:
            return
        selected = self._select(ioc)
        new = {name: live for name, live in selected.items() if name not in self.pvs}
        if not selected:
            log.info("no PVs to autosave (none declared autosave=True or listed "
                     "in autosave.pvs)")
        if self.store is None:
            if new and not self._tried_store:
                self._tried_store = True
                self.store = self._open_store()
            if self.store is not None:
                self.pvs = new
                self._restore(ioc, self.store.load())
                self._watch(new.values())
                self._show_status()
                if self.last_save is not None and "AUTOSAVE_LAST_SAVE" in self._status_pvs:
                    self._status_pvs["AUTOSAVE_LAST_SAVE"].set(utc(self.last_save))
            return
        restored = 0
        for name, live in new.items():
            if name not in self._pending:
                log.info("%s (added by a startup hook) is not in the file; kept its "
                         "initial value", name)
                continue
            try:
                live.set(check_restorable(live, self._pending.pop(name)))
            except PutRefused as exc:
                log.warning("skipped saved value %s: %s", name, exc)
                self._skipped += 1
            else:
                restored += 1
            for key in [k for k in self._pending if split_field(k)[0] == name]:
                if not restore_field(live, split_field(key)[1], key, self._pending.pop(key)):
                    self._skipped += 1
        self._settle_pending(ioc)
        if new:
            self.pvs = {**self.pvs, **new}
            self._watch(new.values())
            log.info("restored %d of %d PVs added by startup hooks; saving %d PVs",
                     restored, len(new), len(self.pvs))
        if self.restore_status in ("OK", "VALUES_SKIPPED"):
            self.restore_status = "VALUES_SKIPPED" if self._skipped else "OK"
        self._show_status()

    def count_start(self) -> int | None:
        """Count this start in ``NAME.starts`` beside the save file (START_CNT) and
        return the count; None when autosave is off or its directory not writable."""
        s = self.settings
        if not s.enabled or (self.store is None and not os.access(s.directory, os.W_OK)):
            return None
        path = starts.counter_path(s.directory, s.file or file_name_for(self.prefix))
        try:
            return starts.count_start(path)
        except OSError as exc:
            log.warning("start counter %s not written (%s): START_CNT shows 1", path,
                        exc.strerror or exc)
            return None

    def _settle_pending(self, ioc: IOC) -> None:
        """Saved values no PV claimed, now that every PV exists."""
        for name, value in self._pending.items():
            if name in ioc.pvs:
                log.info("%s is saved but no longer autosaved; not restored", name)
            else:
                log.warning("skipped saved value %s = %s: this IOC has no such PV",
                            name, shown(value))
                self._skipped += 1
        self._pending.clear()

    def _watch(self, pvs: Iterable[PV]) -> None:
        for live in pvs:
            self._unsubscribe.append(live.subscribe(self._on_change))
            self._unsubscribe.append(live.subscribe_metadata(self._on_change))
        self._wake.set()  # first save soon: creates the file, replaces a bad one

    def _select(self, ioc: IOC) -> dict[str, PV]:
        s = self.settings
        chosen = {name for name, live in ioc.pvs.items() if live.spec.autosave}
        for key, refs in (("pvs", s.pvs), ("exclude", s.exclude)):
            for index, ref in enumerate(refs):
                live = ioc.find_pv(ref)
                if live is None and self._defer:
                    continue  # a startup hook may add it: adopt() decides
                if live is None:
                    known = ", ".join(sorted(ioc.pv_paths())) or "none"
                    raise ConfigError(s.source, f"autosave.{key}[{index}]",
                                      f"{type(ioc).__name__} has no PV {ref!r}",
                                      f"use an attribute name or PV name suffix; "
                                      f"attributes: {known}")
                if key == "pvs":
                    chosen.add(live.name)
                else:
                    chosen.discard(live.name)
        return {name: live for name, live in ioc.pvs.items() if name in chosen}

    def _open_store(self) -> AutosaveStore | None:
        s = self.settings
        store = AutosaveStore(s.directory, s.file or file_name_for(self.prefix), s.generations)
        where = ("autosave.directory", s.source) if s.directory_source == s.source else (
            ENV_DIR, "environment")
        try:
            if s.explicit_directory:
                s.directory.mkdir(parents=True, exist_ok=True)
            store.acquire()
        except StoreLocked:
            raise ConfigError(where[1], where[0],
                              f"{store.path} is in use by another running IOC",
                              "two IOCs must not share a prefix and autosave directory; "
                              "stop the other one") from None
        except OSError as exc:
            if s.explicit_directory:
                raise ConfigError(where[1], where[0],
                                  f"autosave directory {s.directory} is not usable: "
                                  f"{exc.strerror or exc}",
                                  "create it writable for this user, mount a volume there, "
                                  "or set autosave.enabled: false") from None
            log.warning("DISABLED: the default directory %s is not usable (%s); "
                        "values will not survive a restart. Set %s or autosave.directory "
                        "to keep them.", s.directory, exc.strerror or exc, ENV_DIR)
            self._unintended_disable = True
            return None
        for tmp in store.remove_stale_temps():
            log.info("removed %s left by an interrupted save", tmp.name)
        return store

    def _restore(self, ioc: IOC, loaded: Loaded) -> None:
        assert self.store is not None
        store = self.store
        for path, reason in loaded.rejected:
            log.error("%s is unusable: %s", path, reason)
        current_bad = any(path == store.path for path, _ in loaded.rejected)
        if loaded.file is None:
            if loaded.found_any:
                self.restore_status = "RESTORE_FAILED"
                log.error("RESTORE_FAILED: no usable file among %s and its %d "
                          "generations; starting with initial values", store.path,
                          store.generations)
            else:
                self.restore_status = "NO_FILE"
                log.info("NO_FILE: %s does not exist yet; starting with initial "
                         "values", store.path)
            if current_bad:
                log.warning("moved the corrupt file to %s",
                            store.quarantine_current())
            self._log_plan()
            return
        saved = loaded.file
        restored, skipped = 0, 0
        fields: list[tuple[PV, str, str, Any]] = []
        for name, value in saved.values.items():
            base, field = split_field(name)
            if field and base in self.pvs:
                fields.append((self.pvs[base], field, name, value))
                continue
            live = self.pvs.get(name)
            if live is None:
                if self._defer and name not in ioc.pvs:
                    self._pending[name] = value  # a startup hook may add it
                elif name in ioc.pvs:
                    log.info("%s is saved but no longer autosaved; not restored",
                             name)
                else:
                    log.warning("skipped saved value %s = %s: this IOC has no such PV",
                                name, shown(value))
                    skipped += 1
                continue
            try:
                live.set(check_restorable(live, value))
            except PutRefused as exc:
                log.warning("skipped saved value %s = %s: %s", name, shown(value), exc)
                skipped += 1
            else:
                restored += 1
        for live, field, name, value in fields:  # after the values: a limit may alarm
            if restore_field(live, field, name, value):
                restored += 1
            else:
                skipped += 1
        missing = [name for name in self.pvs if name not in saved.values]
        if missing:
            log.info("not in the file, kept initial values: %s", ", ".join(missing))
        self._skipped = skipped
        if loaded.generation > 0:
            self.restore_status = "RESTORED_FROM_BACKUP"
        elif skipped:
            self.restore_status = "VALUES_SKIPPED"
        else:
            self.restore_status = "OK"
            self._last_lines = fileformat.encode_values(saved.values)
        self.last_save = saved.saved_at
        log_fn = log.info if self.restore_status == "OK" else log.warning
        log_fn("%s: restored %d of %d saved values from %s (written %s)%s",
               self.restore_status, restored, len(saved.values), loaded.path,
               saved.meta.get("saved", "at an unknown time"),
               f"; {skipped} skipped" if skipped else "")
        if current_bad:
            log.warning("moved the corrupt file to %s", store.quarantine_current())
        self._log_plan()

    def _log_plan(self) -> None:
        s = self.settings
        assert self.store is not None
        log.info("saving %d PVs to %s (debounce %g s, period %g s, %d generations)",
                 len(self.pvs), self.store.path, s.debounce, s.period, s.generations)

    # -- saving ----------------------------------------------------------------
    def _on_change(self, _live: PV) -> None:
        self._wake.set()

    def snapshot(self) -> dict[str, Any]:
        """Name -> saveable value of every saved PV, at this instant; and
        ``NAME.FIELD`` -> value of each metadata field a client changed."""
        out: dict[str, Any] = {}
        for name, live in self.pvs.items():
            out[name] = saveable(live)
            for field, value in changed_fields(live.declared, live.spec).items():
                out[f"{name}.{field}"] = value
        return out

    async def run(self) -> None:
        """The writer task: save after changes (debounced) and every ``period``."""
        if self.store is None:
            return
        s = self.settings
        while not self._stopped:
            reason = "change"
            try:
                async with asyncio.timeout(s.period):
                    await self._wake.wait()
            except TimeoutError:
                reason = "periodic"
            else:
                await asyncio.sleep(s.debounce)
            if self._stopped:
                return
            try:
                await self.save(reason)
            except Exception:
                log.exception("unexpected error while saving")

    async def save(self, reason: str = "request") -> bool:
        """Write the current values unless the file already holds them; True if written.

        A failed write is logged, shown as SAVE_FAILED and retried later; it
        never raises ``OSError``.
        """
        if self.store is None:
            return False
        store = self.store
        async with self._lock:
            self._wake.clear()
            values = self.snapshot()
            lines = fileformat.encode_values(values)
            if lines == self._last_lines and not self._failed and store.path.exists():
                return False
            now = time.time()
            data = fileformat.seal({"prefix": self.prefix, "saved": fileformat.iso_utc(now),
                                    "podioc": __version__}, lines, len(values))
            try:
                await in_daemon_thread(store.write, data, "autosave-write")
            except OSError as exc:
                if not self._failed:
                    log.error("SAVE_FAILED: writing %s failed: %s; retrying on "
                              "the next change and every %g s", store.path, exc,
                              self.settings.period)
                self._failed = True
                self._show_status()
                return False
            if self._failed:
                log.warning("saving to %s works again", store.path)
                self._failed = False
                self._show_status()
            elif self._last_lines is None:
                log.info("wrote %s (%d PVs)", store.path, len(values))
            self._last_lines = lines
            self.last_save = now
            if "AUTOSAVE_LAST_SAVE" in self._status_pvs:
                self._status_pvs["AUTOSAVE_LAST_SAVE"].set(utc(now))
            log.debug("saved %d PVs (%s)", len(values), reason)
            for hook in self.saved_hooks:
                try:
                    hook(values)
                except Exception:  # a broken observer must not look like a failed save
                    log.exception("saved hook %r failed", hook)
            return True

    async def stop(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """The final save (call right after puts are closed); then stop watching."""
        if self.store is None or self._stopped:
            return
        self._stopped = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                written = await self.save("shutdown")
            log.info("final autosave %s", "written" if written else
                     "not needed (file up to date)" if not self._failed else "FAILED")
        except TimeoutError:
            log.error("the final autosave did not finish within %g s (storage "
                      "stalled?); exiting without it", timeout)
        finally:
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe.clear()
            self.store.release()

    # -- status ------------------------------------------------------------------
    def _show_status(self) -> None:
        live = self._status_pvs.get("AUTOSAVE_STATUS")
        if live is None:
            return
        state = self.status
        severity, status = ALARMS[state]
        if state == "DISABLED" and self._unintended_disable:
            severity, status = Severity.MINOR, Status.DISABLE
        live.set(state)
        live.set_alarm(severity, status, f"autosave {state}")


def restore_field(live: PV, field: str, name: str, value: Any) -> bool:
    """Restore one saved metadata field (``NAME.FIELD``); False (logged) if refused."""
    try:
        live.set_field(field, value)
    except PutRefused as exc:
        log.warning("skipped saved value %s = %s: %s", name, shown(value), exc)
        return False
    return True
