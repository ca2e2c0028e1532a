"""The ``Device`` base class: the PVs, hooks and sub-devices of one part of an IOC.

A device class declares PVs (``pv.float(...)``), hooks (``@scan``,
``@startup``, ``@shutdown``, ``@x.validator``, ``@x.on_put``) and sub-devices
(``pv.device(Cls)``, ``pv.vector(Cls, count)``). :class:`~podioc.model.ioc.IOC`
is the device at the root of the tree: it holds the prefix and every PV by
full name.

**Naming rule.** A PV's name is its ``name=`` or its attribute name in upper
case. A sub-device adds a segment and a ``:`` in front of its PVs' names: its
``name=`` or its attribute name in upper case (``psu`` -> ``PSU:``;
``name=""`` adds nothing). Member ``n`` of a vector adds its stem and ``n``
(``ch`` -> ``CH1:``, ``CH2:`` ...). So ``ioc.psu.ch[3].voltage`` is served as
``PREFIX + "PSU:CH3:VOLTAGE"``. Its attribute path, used in ``podioc describe``
and accepted by ``autosave.pvs`` and access groups, is ``psu.ch[3].voltage``.

Names that collide are refused: among declarations, when the class is
defined (file:line of the second one); once counts or run-time additions are
known, when the device is attached or the PV added.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

from ..errors import IOCDefinitionError
from .hooks import HOOK_ATTR, where
from .members import DeviceSpec, DeviceVector, VectorSpec, check_segment
from .names import Declared, StaticName, checked_names
from .spec import PVSpec, T
from .state import PV

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .ioc import IOC

D = TypeVar("D", bound="Device")
Member = Union["Device", DeviceVector[Any]]
#: (full PV name, live PV, attribute path) of one PV in a tree.
Entry = tuple[str, PV[Any], str]


class Device:
    """Base class of a device: declare PVs, hooks and sub-devices as class attributes.

    Subclasses may take arguments in ``__init__`` and must call
    ``super().__init__()``. On an instance, each PV attribute is the live
    :class:`~podioc.model.state.PV` and each sub-device attribute the live
    sub-device (or :class:`DeviceVector`). Hooks and scans of a sub-device run
    with the sub-device as ``self``.
    """

    #: attribute name -> PV spec, for this class and its bases (in declaration order).
    pv_specs: ClassVar[dict[str, PVSpec[Any]]] = {}
    #: attribute name -> sub-device declaration (``pv.device`` / ``pv.vector``).
    member_specs: ClassVar[dict[str, DeviceSpec[Any] | VectorSpec[Any]]] = {}
    #: (kind, argument, method name) of every decorated method.
    hook_table: ClassVar[list[tuple[str, Any, str]]] = []
    #: Every PV name the class declares, relative to it (for collision checks).
    static_names: ClassVar[tuple[StaticName, ...]] = ()
    #: ``__init__`` arguments that give vector counts.
    count_args: ClassVar[tuple[str, ...]] = ()

    number: int | None
    _init_arguments: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: dict[str, Declared] = {}
        hooks: list[tuple[str, Any, str]] = []
        for klass in reversed(cls.__mro__):
            for attr, obj in vars(klass).items():
                if isinstance(obj, PVSpec | DeviceSpec | VectorSpec):
                    declared[attr] = obj
                tag = getattr(obj, HOOK_ATTR, None)
                if tag is not None and callable(obj):
                    hooks = [h for h in hooks if h[2] != attr]
                    hooks.append((tag[0], tag[1], attr))
        owned = {id(obj) for obj in declared.values() if isinstance(obj, PVSpec)}
        for kind, arg, attr in hooks:
            if kind in ("validator", "on_put") and id(arg) not in owned:
                raise IOCDefinitionError(
                    f"{where(getattr(cls, attr))}: {kind} {attr!r} decorates a PV that is not "
                    f"an attribute of {cls.__name__}")
        params = inspect.signature(cls.__init__).parameters
        counts = []
        for obj in declared.values():
            if isinstance(obj, VectorSpec) and isinstance(obj.count, str):
                if obj.count not in params:
                    raise IOCDefinitionError(
                        f"{obj.declared_at}: pv.vector count={obj.count!r}: "
                        f"{cls.__name__}.__init__ takes no argument {obj.count!r} "
                        f"(it takes: {', '.join(list(params)[1:]) or 'none'})")
                counts.append(obj.count)
        cls.pv_specs = {a: o for a, o in declared.items() if isinstance(o, PVSpec)}
        cls.member_specs = {a: o for a, o in declared.items() if not isinstance(o, PVSpec)}
        cls.hook_table = hooks
        cls.count_args = tuple(counts)
        cls.static_names = checked_names(cls.__name__, declared)

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        # Vector counts may name __init__ arguments: note them before __init__ runs.
        arguments: dict[str, Any] = {}
        if cls.count_args:
            try:
                bound = inspect.signature(cls.__init__).bind(self, *args, **kwargs)
            except TypeError:
                pass  # __init__ raises the precise error
            else:
                bound.apply_defaults()
                arguments = dict(bound.arguments)
        self._init_arguments = arguments
        return self

    def __init__(self) -> None:
        self._pvs_by_attr: dict[str, PV[Any]] = {}
        self._members: dict[str, Member] = {}
        self._parent: Device | None = None
        self._segment = ""  # this device's name segment with its ':' ("CH3:")
        self._label = ""  # its attribute label in the parent ("ch[3]")
        self._root: IOC | None = None
        #: The member number inside a vector (None elsewhere); set when attached.
        self.number = None
        cls = type(self)
        for attr, spec in cls.pv_specs.items():
            self.add_pv(spec, attr)
        for attr, member in cls.member_specs.items():
            if isinstance(member, DeviceSpec):
                self._attach(attr, member.cls(), member.segment, member.declared_at)
            else:
                count = self._count_of(attr, member)
                made = {n: member.cls() for n in range(member.start, member.start + count)}
                self._attach_vector(attr, DeviceVector(made, member.stem), member.declared_at)
        for kind, arg, attr in cls.hook_table:
            if kind == "validator":
                self._pvs_by_attr[arg.attr].validators.append(getattr(self, attr))
            elif kind == "on_put":
                self._pvs_by_attr[arg.attr].on_put_hooks.append(getattr(self, attr))

    def _count_of(self, attr: str, member: VectorSpec[Any]) -> int:
        if isinstance(member.count, int):
            return member.count
        count = self._init_arguments.get(member.count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{type(self).__name__}.{attr}: the number of devices is the "
                             f"argument {member.count}, which is {count!r}; give a whole "
                             f"number >= 0")
        return count

    # -- building at run time --------------------------------------------------
    def add_pv(self, spec: PVSpec[T], attr: str | None = None) -> PV[T]:
        """Add a PV to this device, e.g. one per channel the hardware reports.

        Allowed in ``__init__`` and in ``@startup`` hooks; once the IOC serves,
        it raises :class:`~podioc.errors.AlreadyServingError`. ``attr`` is the
        name :meth:`pv_by_attr` finds it by (default: the PV name). Attach
        validators and put hooks with ``live.validator(fn)`` / ``live.on_put(fn)``.
        A PV name or attribute already in use raises :class:`IOCDefinitionError`
        and adds nothing.
        """
        if spec.name is None:
            raise IOCDefinitionError(f"{spec.declared_at}: a PV added with add_pv needs "
                                     "name=...")
        key = attr or spec.name
        full = self.name_prefix + spec.name
        live: PV[T] = PV(spec, full)
        root = self._root
        entry = (full, live, self._path_of(key))
        if root is not None:
            root.check_open(f"PV {full}")
            root.register([entry], dry_run=True)
        if key in self._pvs_by_attr or key in self._members:
            used = self._pvs_by_attr.get(key)
            what = (f"{used.name} (declared at {used.spec.declared_at})" if used is not None
                    else f"sub-device {self._path_of(key)}")
            raise IOCDefinitionError(
                f"{spec.declared_at}: cannot add PV {full} as attribute {key!r}: "
                f"attribute {key!r} is already used by {what}; pass another attr=... "
                f"to add_pv")
        if root is not None:
            root.register([entry])
        self._pvs_by_attr[key] = live
        return live

    def add_device(self, attr: str, device: D, *, name: str | None = None) -> D:
        """Attach ``device`` as sub-device ``attr`` (segment ``name`` or ``ATTR``).

        For a device built with arguments, or when the hardware says it exists;
        in ``__init__`` or a ``@startup`` hook. Returns ``device``.
        """
        at = _caller_site()
        check_segment(name, at, allow_empty=True)
        self._attach(attr, device, attr.upper() if name is None else name, at)
        return device

    def add_vector(self, attr: str, devices: Mapping[int, D] | Sequence[D], *,
                   name: str | None = None, start: int = 1) -> DeviceVector[D]:
        """Attach identical sub-devices as vector ``attr``: a sequence is numbered
        from ``start``, a mapping gives the numbers. Member ``n``'s PVs are named
        ``NAME + str(n) + ":" + PV`` (``NAME``: ``name`` or ``ATTR``)."""
        at = _caller_site()
        check_segment(name, at, allow_empty=False)
        numbered = dict(devices) if isinstance(devices, Mapping) else {
            start + i: d for i, d in enumerate(devices)}
        vector = DeviceVector(numbered, attr.upper() if name is None else name)
        self._attach_vector(attr, vector, at)
        return vector

    def _attach_vector(self, attr: str, vector: DeviceVector[Any], at: str) -> None:
        self._attach(attr, vector, vector.stem, at)

    def _attach(self, attr: str, member: Member, segment: str, at: str) -> None:
        """Make ``member`` (a device or a vector) the sub-device ``attr``, atomically."""
        devices = list(member.items()) if isinstance(member, DeviceVector) else [(None, member)]
        for _, device in devices:
            if not isinstance(device, Device) or not hasattr(device, "_members"):
                raise IOCDefinitionError(
                    f"{at}: {attr}: {device!r} is not a Device, or its __init__ did not "
                    f"call super().__init__()")
            if device._parent is not None or device._root is device:
                raise IOCDefinitionError(f"{at}: {attr}: {type(device).__name__} is already "
                                         f"part of a tree at {device.path or 'the root'!r}")
        if attr in self._members or attr in self._pvs_by_attr:
            raise IOCDefinitionError(f"{at}: attribute {attr!r} of {self._describe()} is "
                                     f"already used; choose another attribute name")
        root = self._root
        if root is not None:
            root.check_open(f"sub-device {self._path_of(attr)}")
        for number, device in devices:
            device._parent = self
            device.number = number
            device._segment = (f"{segment}{number}:" if number is not None
                               else f"{segment}:" if segment else "")
            device._label = attr if number is None else f"{attr}[{number}]"
        self._members[attr] = member
        if isinstance(member, DeviceVector):
            member.path = self._path_of(attr)
        if root is None:
            return
        try:
            root.register([entry for _, device in devices for entry in device.subtree_pvs()])
        except IOCDefinitionError as exc:
            del self._members[attr]
            for _, device in devices:
                device._parent, device.number, device._segment, device._label = (
                    None, None, "", "")
            raise IOCDefinitionError(f"{at}: cannot attach {self._path_of(attr)}: {exc}"
                                     ) from None
        for _, device in devices:
            for below in device.devices():
                below._root = root

    # -- the tree --------------------------------------------------------------
    def pv_by_attr(self, attr: str) -> PV[Any]:
        """This device's live PV declared (or added) as attribute ``attr``."""
        return self._pvs_by_attr[attr]

    def member(self, attr: str) -> Member:
        """This device's sub-device (or vector) ``attr``."""
        return self._members[attr]

    @property
    def own_pvs(self) -> dict[str, PV[Any]]:
        """Attribute name -> live PV, of this device only (not its sub-devices)."""
        return dict(self._pvs_by_attr)

    @property
    def parent(self) -> Device | None:
        """The device this one is attached to (None for the IOC or a loose device)."""
        return self._parent

    @property
    def path(self) -> str:
        """Attribute path from the IOC, e.g. ``psu.ch[3]`` (``""`` for the IOC)."""
        labels = []
        node: Device | None = self
        while node is not None and node._parent is not None:
            labels.append(node._label)
            node = node._parent
        return ".".join(reversed(labels))

    @property
    def name_prefix(self) -> str:
        """What precedes this device's PV names, e.g. ``BL01:PSU:CH3:`` (the IOC's
        prefix included once attached to it)."""
        parts = []
        node: Device = self
        while node._parent is not None:
            parts.append(node._segment)
            node = node._parent
        return node._base_prefix() + "".join(reversed(parts))

    def devices(self) -> Iterator[Device]:
        """This device and all below it, parents first. Lazy: sub-devices a caller
        attaches to a device while handling it (in a startup hook) are visited."""
        yield self
        for member in list(self._members.values()):
            for device in (list(member.values()) if isinstance(member, DeviceVector)
                           else [member]):
                yield from device.devices()

    def subtree_pvs(self) -> list[Entry]:
        """(full name, live PV, attribute path) of every PV of this device and below."""
        out: list[Entry] = []
        for device in self.devices():
            prefix = device.name_prefix
            out.extend((prefix + live.spec.name, live, device._path_of(key))
                       for key, live in device._pvs_by_attr.items()
                       if live.spec.name is not None)
        return out

    def own_methods(self, kind: str) -> list[tuple[Callable[[], Awaitable[None]], Any]]:
        """This device's bound methods decorated as ``kind`` ('scan', 'startup', ...)."""
        return [(getattr(self, attr), arg) for k, arg, attr in type(self).hook_table
                if k == kind]

    def _path_of(self, key: str) -> str:
        path = self.path
        return f"{path}.{key}" if path else key

    def _base_prefix(self) -> str:
        return ""

    def _describe(self) -> str:
        return f"{type(self).__name__} {self.path!r}" if self.path else type(self).__name__


def _caller_site() -> str:
    """``file:line`` of the user code that called a Device method."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "<unknown>"
