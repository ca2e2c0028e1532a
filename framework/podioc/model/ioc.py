"""The ``IOC`` base class that users subclass."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar

from ..errors import ConfigError, IOCDefinitionError, Problem
from .hooks import HOOK_ATTR, where
from .spec import PVSpec
from .state import PV
from .threads import FOREIGN_SET_TIMEOUT, Home, Loop

Method = Callable[[], Awaitable[None]]


class IOC:
    """Base class of an IOC: declare PVs as class attributes, hooks as methods.

    ``prefix`` is prepended to every PV name. Subclasses may take keyword
    arguments in ``__init__`` (they come from the instance config's ``args``)
    and must call ``super().__init__(prefix)``.
    """

    #: attribute name -> spec, for this class and its bases (in declaration order).
    pv_specs: ClassVar[dict[str, PVSpec]] = {}
    #: (kind, argument, method name) of every decorated method.
    hook_table: ClassVar[list[tuple[str, Any, str]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, PVSpec] = {}
        hooks: list[tuple[str, Any, str]] = []
        for klass in reversed(cls.__mro__):
            for attr, obj in vars(klass).items():
                if isinstance(obj, PVSpec):
                    specs[attr] = obj
                tag = getattr(obj, HOOK_ATTR, None)
                if tag is not None and callable(obj):
                    hooks = [h for h in hooks if h[2] != attr]
                    hooks.append((tag[0], tag[1], attr))
        names: dict[str, str] = {}
        for attr, spec in specs.items():
            assert spec.name is not None
            if spec.name in names:
                raise IOCDefinitionError(
                    f"{spec.declared_at}: PV name {spec.name!r} of {cls.__name__}.{attr} is "
                    f"already used by {cls.__name__}.{names[spec.name]}; pass name=... to one")
            names[spec.name] = attr
        owned = set(map(id, specs.values()))
        for kind, arg, attr in hooks:
            if kind in ("validator", "on_put") and id(arg) not in owned:
                raise IOCDefinitionError(
                    f"{where(getattr(cls, attr))}: {kind} {attr!r} decorates a PV that is not "
                    f"an attribute of {cls.__name__}")
        cls.pv_specs = specs
        cls.hook_table = hooks

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._pvs_by_attr: dict[str, PV] = {}
        self._pvs: dict[str, PV] = {}
        self._home: Home | None = None
        for attr, spec in type(self).pv_specs.items():
            self.add_pv(spec, attr)
        for kind, arg, attr in type(self).hook_table:
            method = getattr(self, attr)
            if kind == "validator":
                self._pvs_by_attr[arg.attr].validators.append(method)
            elif kind == "on_put":
                self._pvs_by_attr[arg.attr].on_put_hooks.append(method)

    def pva_extras(self) -> dict[str, Any]:
        """PVA-only channels this IOC serves itself: full name -> p4p ``SharedPV``.

        For values no PV kind describes (e.g. an NTNDArray image). The runtime
        calls it once, inside the running event loop, just before the PVA server
        starts; the IOC posts updates to the SharedPVs itself. These channels
        are not on CA, not in ``podioc describe`` and not autosaved; access
        rules' read (channel) checks apply to them. Default: none.
        """
        return {}

    def add_pv(self, spec: PVSpec, attr: str | None = None) -> PV:
        """Add a PV at run time (before serving starts), e.g. one per channel.

        ``attr`` is the name :meth:`pv_by_attr` finds it by (default: the PV
        name). A PV name or attribute name already in use raises
        :class:`IOCDefinitionError` and adds nothing.
        """
        assert spec.name is not None, "spec has no name; pass name=..."
        full = self.prefix + spec.name
        key = attr or spec.name
        if full in self._pvs:
            existing = self._pvs[full]
            raise IOCDefinitionError(
                f"{spec.declared_at}: PV {full} is defined twice: it is already added as "
                f"attribute {self._attr_of(existing)!r} (declared at "
                f"{existing.spec.declared_at}); pass another name=... to one of them")
        if key in self._pvs_by_attr:
            existing = self._pvs_by_attr[key]
            raise IOCDefinitionError(
                f"{spec.declared_at}: cannot add PV {full} as attribute {key!r}: "
                f"attribute {key!r} is already used by {existing.name} (declared at "
                f"{existing.spec.declared_at}); pass another attr=... to add_pv")
        live = PV(spec, full)
        if self._home is not None:
            live.bind(self._home)
        self._pvs[full] = live
        self._pvs_by_attr[key] = live
        return live

    def bind_loop(self, loop: Loop, *, timeout: float = FOREIGN_SET_TIMEOUT) -> None:
        """Make ``loop`` the owner of every PV's state; call it on the loop's thread.

        From then on a ``set``/``.value =``/``set_alarm`` from another thread is
        applied on the loop thread and waits up to ``timeout`` s for it (see
        :mod:`podioc.model.threads`). The runtime calls this before the startup
        hooks.
        """
        self._home = Home(loop, timeout)
        for live in self._pvs.values():
            live.bind(self._home)

    def _attr_of(self, live: PV) -> str:
        return next(a for a, p in self._pvs_by_attr.items() if p is live)

    # -- access ------------------------------------------------------------
    def pv_by_attr(self, attr: str) -> PV:
        """The live PV declared as class attribute ``attr``."""
        return self._pvs_by_attr[attr]

    @property
    def pvs(self) -> dict[str, PV]:
        """Full PV name -> live PV."""
        return self._pvs

    def __iter__(self) -> Iterator[PV]:
        return iter(self._pvs.values())

    def methods(self, kind: str) -> list[tuple[Method, Any]]:
        """Bound methods decorated as ``kind`` ('scan', 'startup', 'shutdown')."""
        return [(getattr(self, attr), arg) for k, arg, attr in type(self).hook_table
                if k == kind]

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
