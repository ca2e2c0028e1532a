"""Find the IOC class a target names: ``file.py[:Class]`` or ``package.module:Class``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

from ..errors import ConfigError
from ..model import IOC


def load_class(ref: str, base_dir: Path | None = None, source: str = "<target>") -> type[IOC]:
    """Import the IOC class named by ``ref``; errors say what to fix."""
    module_ref, _, class_name = ref.partition(":")
    if module_ref.endswith(".py"):
        path = Path(module_ref)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ConfigError(source, "ioc", f"file {path} does not exist",
                              "give a path relative to the config file")
        module_name = "podioc_user_" + re.sub(r"\W", "_", str(path.resolve()))
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
    else:
        try:
            module = importlib.import_module(module_ref)
        except ImportError as exc:
            raise ConfigError(source, "ioc", f"cannot import {module_ref!r}: {exc}",
                              "install the package or use 'file.py:Class'") from None
    classes = {name: obj for name, obj in vars(module).items()
               if inspect.isclass(obj) and issubclass(obj, IOC) and obj is not IOC
               and obj.__module__ == module.__name__}
    if class_name:
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, IOC)):
            raise ConfigError(source, "ioc", f"{module_ref} has no IOC class {class_name!r}",
                              f"IOC classes there: {', '.join(classes) or 'none'}")
        return cls
    if len(classes) != 1:
        raise ConfigError(source, "ioc", f"{module_ref} defines {len(classes)} IOC classes",
                          f"name one with '{module_ref}:Class' "
                          f"({', '.join(classes) or 'none found'})")
    return next(iter(classes.values()))
