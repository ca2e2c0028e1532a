"""Every ```python block of README.md runs, and passes ``mypy --strict`` (docs as tests).

Each block is a standalone module. It is executed; then every IOC class it
defines is instantiated (prefix ``README:``, default arguments) and run as
``podioc run`` would, without servers: bound to an event loop, startup hooks
(parents first, including devices they add), each scan once, shutdown hooks.
No device is attached, so a scan may fail as it would with the device
unplugged (a podioc error or ``OSError``, which the runtime logs); any other
exception is a bug in the example.
A block preceded by ``<!-- docs-test: skip -->`` is a fragment and is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from mypy import api

from podioc import IOC, PodiocError

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
SKIP = "<!-- docs-test: skip -->"


def blocks() -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every python block not marked to skip;
    the code starts with blank lines so that its line numbers are the README's."""
    text = README.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() != SKIP:
            line = text.count("\n", 0, match.start()) + 1
            found.append((line, "\n" * line + match.group(1)))
    return found


BLOCKS = blocks()


def test_the_readme_has_the_blocks_it_teaches_with() -> None:
    assert len(BLOCKS) >= 6
    every = "\n".join(code for _, code in BLOCKS)
    for needle in ("pv.vector(", "pv.device(", "add_vector(", "add_pv(", ".on_put(",
                   "threading.Thread", "@shutdown"):
        assert needle in every, needle


async def exercise(ioc: IOC) -> None:
    """Startup hooks, each scan once, shutdown hooks: what ``podioc run`` does."""
    ioc.bind_loop(asyncio.get_running_loop())
    for device in ioc.devices():
        for method, _ in device.own_methods("startup"):
            await method()
    ioc.seal()
    for method, _ in ioc.methods("scan"):
        with contextlib.suppress(PodiocError, OSError):  # no device: logged, scans go on
            await method()
    for device in reversed(list(ioc.devices())):
        for method, _ in device.own_methods("shutdown"):
            await method()


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_block_runs(line: int, code: str) -> None:
    module = f"readme_block_{line}"
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile(code, str(README), "exec"), namespace)
    iocs = [obj for obj in namespace.values() if inspect.isclass(obj)
            and issubclass(obj, IOC) and obj.__module__ == module]
    for cls in iocs:
        asyncio.run(exercise(cls("README:")))


def test_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    files = []
    for line, code in BLOCKS:
        path = tmp_path / f"readme_block_{line}.py"  # line numbers are README.md's
        path.write_text(code)
        files.append(str(path))
    stdout, stderr, status = api.run([
        "--config-file", str(REPO / "pyproject.toml"), "--strict", "--no-incremental",
        "--cache-dir", str(tmp_path / "cache"), *files])
    assert (status, stderr) == (0, ""), stdout
