"""The caproto compatibility guard: every name podioc relies on still exists as expected.

A caproto release that renames, removes or changes the signature of one of
them fails here with the name in the message, instead of breaking the CA
server silently. The static checks keep the guard complete: caproto's
private modules are imported only by the guard, and only inside
``protocols/ca/``.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
from pathlib import Path
from typing import Any

import caproto as ca
import pytest

from podioc.protocols.ca import guard
from podioc.protocols.ca.context import ServerContext

FRAMEWORK = Path(__file__).resolve().parents[2] / "framework" / "podioc"
CA_PACKAGE = FRAMEWORK / "protocols" / "ca"


def _resolve(owner: str) -> Any:
    module, _, qualname = owner.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split(".") if qualname else ():
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("item", guard.IMPORTS, ids=lambda i: f"{i.module}.{i.name}")
def test_imported_name_exists(item: guard.Import) -> None:
    module = importlib.import_module(item.module)
    assert hasattr(module, item.name), (
        f"caproto no longer has {item.module}.{item.name} ({item.why})")


@pytest.mark.parametrize("item", guard.OVERRIDES, ids=lambda o: f"{o.owner}.{o.name}")
def test_overridden_method_keeps_its_signature(item: guard.Override) -> None:
    owner = _resolve(item.owner)
    function = getattr(owner, item.name, None)
    assert callable(function), (
        f"caproto's {item.owner} no longer has {item.name} ({item.why})")
    found = guard.plain_signature(function)
    assert found == item.signature, (
        f"caproto's {item.owner}.{item.name} changed its signature: expected "
        f"{item.signature}, found {found} (podioc relies on it: {item.why})")


class _Client:
    """Just enough of caproto's transport wrapper to build a circuit."""

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 5064)


def _instances() -> dict[str, Any]:
    """One of each caproto object whose attributes podioc uses."""

    async def build() -> dict[str, Any]:
        channel = ca.ChannelDouble(value=1.0)
        ctx = ServerContext({"X": channel}, ["127.0.0.1"])
        sansio = ca.VirtualCircuit(ca.SERVER, ("127.0.0.1", 1), None)
        circuit = guard.VirtualCircuit(sansio, _Client(), ctx)
        update = guard.SubscriptionUpdate
        return {"sansio": sansio, "circuit": circuit, "context": ctx, "channel": channel,
                "alarm": channel.alarm, "update": update}

    return asyncio.run(build())


def test_attributes_podioc_uses_exist() -> None:
    instances = _instances()
    missing = [f"{a.owner}.{a.name} ({a.why})" for a in guard.ATTRIBUTES
               if instances[a.owner] is None or not hasattr(instances[a.owner], a.name)]
    assert not missing, f"caproto objects lack attributes podioc uses: {missing}"


@pytest.mark.parametrize("item", guard.SOURCE_TEXTS, ids=lambda s: s.function)
def test_source_text_podioc_depends_on_is_still_there(item: guard.SourceText) -> None:
    source = inspect.getsource(_resolve(item.function))
    assert item.text in source, (
        f"caproto's {item.function} no longer contains {item.text!r} ({item.why})")


def _private_imports(path: Path) -> list[str]:
    """caproto modules a file imports that are private (a component starts with _)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "caproto" and any(p.startswith("_") for p in parts[1:]):
                found.append(name)
    return found


def test_only_the_guard_imports_caproto_private_modules() -> None:
    offenders = {str(path.relative_to(FRAMEWORK)): names
                 for path in FRAMEWORK.rglob("*.py")
                 if path != CA_PACKAGE / "guard.py" and (names := _private_imports(path))}
    assert not offenders, f"import these through protocols/ca/guard.py: {offenders}"


def test_every_guarded_import_is_listed() -> None:
    listed = {(i.module, i.name) for i in guard.IMPORTS}
    tree = ast.parse((CA_PACKAGE / "guard.py").read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module
                and node.module.startswith("caproto") for alias in node.names}
    assert imported == listed, f"guard imports and IMPORTS differ: {imported ^ listed}"
