"""Import p4p without setuptools, and without reading the source of the stack.

p4p and pvxslibs locate their shared libraries with ``setuptools_dso``'s
``dylink_prepare_dso`` and ``find_dso``, which live in its ``runtime`` module;
but ``import setuptools_dso`` runs the package's ``__init__``, which imports
setuptools' build commands (``import p4p.server``: 0.235 s, 0.098 s without).
:func:`lean_setuptools_dso` registers the package as a plain namespace whose
attributes come from ``setuptools_dso.runtime``, before anything imports it.
It relies on that layout (checked by the unit tests); if the package is
already imported or not laid out so, it does nothing.

Called without a package (as ``pvxslibs.path`` and ``epicscorelibs.path`` call
``dylink_prepare_dso``), those functions find their caller's module with
``setuptools_dso.runtime._auto_pkg``, which calls ``inspect.stack()``: that
reads the source lines of every frame on the stack and scans ``sys.modules``
for each, 0.10-0.13 s of every IOC's start-up. :func:`quick_caller_lookup`
replaces it with the same answer read from the caller's frame (the private
name is listed in :data:`podioc.protocols.pva.guard.PRIVATE`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any

#: The functions p4p and pvxslibs take from setuptools_dso, all in its runtime module.
RUNTIME_NAMES = ("dylink_prepare_dso", "find_dso")


def quick_caller_lookup() -> bool:
    """Make ``setuptools_dso.runtime._auto_pkg`` read no source; True if done."""
    try:
        runtime = importlib.import_module("setuptools_dso.runtime")
    except ImportError:
        return False
    if not callable(getattr(runtime, "_auto_pkg", None)):
        return False
    setattr(runtime, "_auto_pkg", _caller_module_name)  # noqa: B010 (private name)
    return True


def _caller_module_name() -> str:
    """The name of the module that called the function calling this one: what
    ``inspect.getmodule`` finds for that frame (a module's code runs in its dict)."""
    return str(sys._getframe(2).f_globals["__name__"])


def lean_setuptools_dso() -> bool:
    """Make ``setuptools_dso`` resolve to its runtime functions only; True if done."""
    if "setuptools_dso" in sys.modules:
        return False
    try:  # a top-level spec is found without running the package
        spec = importlib.util.find_spec("setuptools_dso")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations or not any(
            os.path.isfile(os.path.join(d, "runtime.py"))
            for d in spec.submodule_search_locations):
        return False
    package = types.ModuleType("setuptools_dso", "setuptools_dso, runtime functions only "
                               "(podioc.protocols.pva.leanimport)")
    package.__path__ = list(spec.submodule_search_locations)

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module("setuptools_dso.runtime"), name)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["setuptools_dso"] = package
    return True
