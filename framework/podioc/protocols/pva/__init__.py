"""PVAccess: p4p SharedPVs with Normative Types bound to model PVs
(:mod:`.channels`), and access rules and connection limits (:mod:`.access`).

Importing this package first makes p4p's import lean (:mod:`.leanimport`):
p4p finds its shared libraries through ``setuptools_dso``, whose package
imports all of setuptools (0.14 s and several MB at every start-up) for the
two functions of its ``runtime`` module that are needed, and those functions
find their caller without reading the source of the whole stack.
"""

from .leanimport import lean_setuptools_dso, quick_caller_lookup

lean_setuptools_dso()
quick_caller_lookup()
