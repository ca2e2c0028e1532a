"""The network-namespace tests' fixtures and report hook, defined in
netns_fixtures.py (see there).

Not type-checked (mypy sees one module per name and ``conftest`` is
tests/conftest.py's): keep code out of this file.
"""

from netns_fixtures import (
    log_dir,
    make_topology,
    module_topology,
    nat,
    netns,
    pytest_runtest_makereport,
)

__all__ = ["log_dir", "make_topology", "module_topology", "nat", "netns",
           "pytest_runtest_makereport"]
