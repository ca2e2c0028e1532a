"""Regression guard for start-up: what importing the runtime loads.

A Runtime given its IOC and settings (the benchmark, tests, embedding) serves
without reading a config, so importing it and the protocols it serves must not
load the config's machinery (pydantic, YAML) nor the deploy tools (Docker SDK,
jsonschema, click); and p4p's import must not read the source of the stack.
Checked deterministically in a fresh interpreter by the modules it ends up
holding, plus a loose budget: the import costs at most a few times an
interpreter that imports numpy (which caproto and p4p need anyway), measured
as a ratio of best-of-three times (so a loaded machine slows both sides).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

#: Modules the runtime path must not import (each costs 0.1-0.5 s here).
HEAVY = ("pydantic", "pydantic_core", "yaml", "jsonschema", "docker", "click",
         "kubernetes_validate", "setuptools")

PROBE = """
import json, sys
import podioc.runtime.server, podioc.runtime.settings, podioc.runtime.health
import podioc.protocols.ca, podioc.protocols.pva.channels  # what serving imports
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy})))
"""


def _run(code: str) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return proc.stdout, time.perf_counter() - start


def test_the_runtime_imports_no_config_or_deploy_machinery() -> None:
    out, _ = _run(PROBE.format(heavy=set(HEAVY)))
    loaded = json.loads(out)
    assert loaded == [], f"importing the runtime loaded {loaded}: import them lazily"


def test_reading_a_config_still_loads_its_schema() -> None:
    out, _ = _run("import sys\nfrom podioc.config import load, InstanceConfig\n"
                  "print(InstanceConfig.__module__, callable(load), 'pydantic' in sys.modules)")
    assert out.split() == ["podioc.config.instance", "True", "True"]


def test_runtime_import_costs_a_bounded_multiple_of_importing_numpy() -> None:
    """About 2.7x here (numpy dominates); 4.2x when the config machinery was imported."""
    numpy = min(_run("import numpy")[1] for _ in range(3))
    runtime = min(_run("import podioc.runtime.server")[1] for _ in range(3))
    assert runtime < 4 * numpy, (
        f"import podioc.runtime.server took {runtime:.2f} s, {runtime / numpy:.1f}x "
        f"importing numpy ({numpy:.3f} s): something heavy is imported at start-up")


def test_p4p_serves_without_importing_setuptools() -> None:
    """protocols.pva makes setuptools_dso resolve to its runtime functions only
    (p4p's import then takes ~0.1 s instead of ~0.24 s); p4p still finds its libraries."""
    out, _ = _run(
        "import sys\n"
        "import podioc.protocols.pva.channels as channels\n"
        "server = channels.make_server([{}], {'EPICS_PVAS_INTF_ADDR_LIST': '127.0.0.1',"
        " 'EPICS_PVAS_SERVER_PORT': '0', 'EPICS_PVAS_BROADCAST_PORT': '0'})\n"
        "print(int(server.conf()['EPICS_PVAS_SERVER_PORT']) > 0,"
        " sorted(m for m in sys.modules if m.split('.')[0] in ('setuptools', 'distutils')))\n"
        "server.stop()\n")
    assert out.split(None, 1) == ["True", "[]\n"], out


def test_p4p_finds_its_libraries_without_reading_the_stack() -> None:
    """setuptools_dso's caller lookup (inspect.stack(): 0.10-0.13 s of start-up) is
    replaced by one that reads the caller's frame; it gives the same package, so a
    relative library name still resolves."""
    out, _ = _run(
        "import inspect\n"
        "import podioc.protocols.pva\n"
        "calls = []\n"
        "stack = inspect.stack\n"
        "inspect.stack = lambda *a, **k: calls.append(1) or stack(*a, **k)\n"
        "import p4p.server\n"
        "from setuptools_dso.runtime import dylink_prepare_dso\n"
        "scope = {'__name__': 'epicscorelibs.path', 'prepare': dylink_prepare_dso}\n"
        "exec(\"info = prepare('..lib.ca')\", scope)\n"
        "print(len(calls), scope['info'].__name__)\n")
    assert out.split() == ["0", "epicscorelibs.lib.ca_dsoinfo"], out
