"""Import p4p without setuptools.

p4p and pvxslibs locate their shared libraries with ``setuptools_dso``'s
``dylink_prepare_dso`` and ``find_dso``, which live in its ``runtime`` module;
but ``import setuptools_dso`` runs the package's ``__init__``, which imports
setuptools' build commands (``import p4p.server``: 0.235 s, 0.098 s without).
:func:`lean_setuptools_dso` registers the package as a plain namespace whose
attributes come from ``setuptools_dso.runtime``, before anything imports it.
It relies on that layout (checked by the unit tests); if the package is
already imported or not laid out so, it does nothing.
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
