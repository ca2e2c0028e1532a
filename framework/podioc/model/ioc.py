"""The ``IOC`` base class that users subclass: the root device, holding every PV."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..errors import AlreadyServingError, ConfigError, IOCDefinitionError, Problem
from .device import Device, Entry
from .state import PV
from .threads import FOREIGN_SET_TIMEOUT, Home, Loop

Method = Callable[[], Awaitable[None]]


class IOC(Device):
    """Base class of an IOC: declare PVs, sub-devices and hooks as class attributes.

    ``prefix`` is prepended to every PV name. Subclasses may take keyword
    arguments in ``__init__`` (they come from the instance config's ``args``)
    and must call ``super().__init__(prefix)``. PVs and sub-devices may be
    added until the IOC serves (in ``__init__`` and ``@startup`` hooks).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._pvs: dict[str, PV[Any]] = {}
        self._paths: dict[str, str] = {}
        self._home: Home | None = None
        self._sealed = False
        super().__init__()
        self.register(self.subtree_pvs())
        for device in self.devices():
            device._root = self

    def _base_prefix(self) -> str:
        return self.prefix

    def pva_extras(self) -> dict[str, Any]:
        """PVA-only channels this IOC serves itself: full name -> p4p ``SharedPV``.

        For values no PV kind describes (e.g. an NTNDArray image). The runtime
        calls it once, inside the running event loop, just before the PVA server
        starts; the IOC posts updates to the SharedPVs itself. These channels
        are not on CA, not in ``podioc describe`` and not autosaved; access
        rules' read (channel) checks apply to them. Default: none.
        """
        return {}

    # -- the registry of full names ---------------------------------------------
    def register(self, entries: list[Entry], *, dry_run: bool = False) -> None:
        """Serve ``entries`` (from :meth:`Device.subtree_pvs`) under their full names.

        Any name already served, or given twice, raises :class:`IOCDefinitionError`
        naming both, and registers nothing. Called by :class:`Device` when PVs or
        sub-devices are added.
        """
        seen: dict[str, tuple[PV[Any], str]] = {}
        for full, live, path in entries:
            if full in self._pvs:
                other: tuple[PV[Any], str] | None = (self._pvs[full], self._paths[full])
            else:
                other = seen.get(full)
            if other is not None:
                raise IOCDefinitionError(
                    f"{live.spec.declared_at}: PV {full} is defined twice: it is already "
                    f"added as attribute {other[1]!r} (declared at "
                    f"{other[0].spec.declared_at}); pass another name=... to one of them")
            seen[full] = (live, path)
        if dry_run:
            return
        for full, live, path in entries:
            live.name = full
            self._pvs[full] = live
            self._paths[full] = path
            if self._home is not None:
                live.bind(self._home)

    def check_open(self, what: str) -> None:
        """Raise :class:`AlreadyServingError` once the IOC serves (see :meth:`seal`)."""
        if self._sealed:
            raise AlreadyServingError(
                f"cannot add {what}: the IOC (prefix {self.prefix!r}) is already serving, and "
                f"PVs are fixed once clients can search for them; add PVs and sub-devices "
                f"in __init__ or in a @startup hook")

    def seal(self) -> None:
        """Fix the set of PVs: the runtime calls this just before serving starts."""
        self._sealed = True

    @property
    def sealed(self) -> bool:
        """True once the IOC serves: adding a PV or sub-device raises."""
        return self._sealed

    def bind_loop(self, loop: Loop, *, timeout: float = FOREIGN_SET_TIMEOUT) -> None:
        """Make ``loop`` the owner of every PV's state; call it on the loop's thread.

        From then on a ``set``/``.value =``/``set_alarm`` from another thread is
        applied on the loop thread and waits up to ``timeout`` s for it (see
        :mod:`podioc.model.threads`); this holds for sub-devices' PVs and PVs added
        later too. The runtime calls this before the startup hooks.
        """
        self._home = Home(loop, timeout)
        for live in self._pvs.values():
            live.bind(self._home)

    # -- access ------------------------------------------------------------
    @property
    def pvs(self) -> dict[str, PV[Any]]:
        """Full PV name -> live PV, of the whole tree."""
        return self._pvs

    def __iter__(self) -> Iterator[PV[Any]]:
        return iter(self._pvs.values())

    def path_of(self, live: PV[Any]) -> str:
        """The attribute path of a served PV, e.g. ``psu.ch[3].voltage``."""
        return self._paths[live.name]

    def pv_paths(self) -> dict[str, PV[Any]]:
        """Attribute path -> live PV, of the whole tree (``setpoint``, ``ch[3].voltage``)."""
        return {path: self._pvs[full] for full, path in self._paths.items()}

    def find_pv(self, ref: str) -> PV[Any] | None:
        """The PV named by attribute path, PV name suffix (without the prefix) or
        full PV name; None when there is none."""
        full = next((f for f, p in self._paths.items() if p == ref), None)
        if full is not None:
            return self._pvs[full]
        return self._pvs.get(self.prefix + ref) or self._pvs.get(ref)

    def methods(self, kind: str) -> list[tuple[Method, Any]]:
        """Bound methods decorated as ``kind`` ('scan', 'startup', 'shutdown') of
        every device in the tree, the IOC's first (see :meth:`Device.devices`)."""
        return [pair for device in self.devices() for pair in device.own_methods(kind)]

    @classmethod
    def create(cls, prefix: str, args: dict[str, Any], source: str = "<args>") -> IOC:
        """Instantiate with arguments from config, naming unknown or missing ones."""
        sig = inspect.signature(cls.__init__)
        params = {n: p for n, p in list(sig.parameters.items())[1:]
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        accepted = [n for n in params if n != "prefix"]
        found = [Problem(f"args.{key}", f"{cls.__name__} takes no argument {key!r}",
                         f"accepted: {', '.join(accepted) or 'none'}")
                 for key in args if key not in params and not takes_any]
        missing = [n for n, p in params.items()
                   if p.default is p.empty and n != "prefix" and n not in args]
        if missing:
            found.append(Problem("args", f"{cls.__name__} needs {', '.join(missing)}",
                                 "add them under args:"))
        if found:
            raise ConfigError.of(source, found)
        try:
            return cls(prefix=prefix, **args)
        except (TypeError, ValueError) as exc:
            raise ConfigError(source, "args", f"{cls.__name__}({args}) failed: {exc}") from exc
