"""The Docker tests' fixtures, defined in docker_fixtures.py (see there).

Not type-checked (mypy sees one module per name and ``conftest`` is
tests/conftest.py's): keep code out of this file.
"""

from docker_fixtures import (
    base_image,
    endpoint,
    engine,
    ioc_containers,
    podioc_image,
    test_image,
)

__all__ = ["base_image", "endpoint", "engine", "ioc_containers", "podioc_image", "test_image"]
