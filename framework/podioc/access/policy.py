"""The instance config's ``access:`` block and the live, reloadable access policy.

```yaml
access:
  file: rules.acf            # EPICS ACF file, relative to this config file
  # rules: |                 # ... or the same text inline (one of file/rules)
  #   ASG(DEFAULT) { RULE(1, READ) }
  groups:                    # ASG name -> PVs in it (suffix, attribute or full name)
    OPERATORS: [SETPOINT, mode]
```

PVs not listed belong to ``DEFAULT``. Without an ``access:`` block podioc
grants every client read access and write access to writable PVs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem
from .acf import ACF, Access, parse

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Ruleset:
    """An immutable snapshot: parsed rules plus the PV-name -> ASG map."""

    acf: ACF
    groups: Mapping[str, str] = field(default_factory=dict)
    origin: str = "<rules>"

    def asg_of(self, pv_name: str) -> str:
        """The access security group of a full PV name (DEFAULT unless assigned)."""
        return self.groups.get(pv_name, "DEFAULT")

    def decide(self, pv_name: str, user: str | None, ip: str) -> tuple[Access, bool]:
        """(rights, trapwrite) for ``user`` at ``ip`` on ``pv_name``."""
        return self.acf.evaluate(self.asg_of(pv_name), user, ip)

    def rights(self, pv_name: str, user: str | None, ip: str) -> Access:
        """READ/WRITE/NONE for ``user`` (None: the best any user gets) at address ``ip``."""
        return self.decide(pv_name, user, ip)[0]

    def summary(self) -> str:
        acf = self.acf
        return (f"{len(acf.asgs)} ASG, {len(acf.uags)} UAG, {len(acf.hags)} HAG, "
                f"{len(self.groups)} PVs assigned to groups")


def _fail(source: str, where: str, problem: str, fix: str = "") -> ConfigError:
    return ConfigError(source, where, problem, fix)


def load_ruleset(block: Mapping[str, Any], source: str, base_dir: Path,
                 pv_names: Iterable[str], prefix: str = "",
                 attrs: Mapping[str, str] | None = None,
                 resolve: Callable[[str], frozenset[str]] | None = None, *,
                 unknown_ok: bool = False) -> Ruleset:
    """Validate an ``access:`` block and parse its rules.

    ``pv_names`` are the full names served, ``attrs`` maps IOC attribute paths to
    full names; a group member may be a full name, a suffix (name without the
    prefix) or an attribute path. Errors name the config or rules file and line.
    ``unknown_ok`` skips members that name no PV (yet: before startup hooks ran).
    """
    if not isinstance(block, Mapping):
        raise _fail(source, "access", "must be a mapping with file: or rules:, and groups:")
    from ..config.access_block import AccessBlock  # pydantic: only when rules are read
    from ..config.problems import validate

    checked = validate(AccessBlock, dict(block), source, "access")
    if checked.file is not None:
        path = (base_dir / checked.file).resolve()
        try:
            text = path.read_text()
        except OSError as exc:
            raise _fail(str(path), "<file>", f"cannot read the access rules: {exc.strerror}",
                        f"check access.file in {source}") from None
        origin = str(path)
    else:
        assert checked.rules is not None
        text, origin = checked.rules, f"{source} (access.rules)"
    acf = parse(text, origin, resolve)

    names = set(pv_names)
    attrs = attrs or {}
    groups: dict[str, str] = {}
    found: list[Problem] = []
    for asg, listed in (checked.groups or {}).items():
        where = f"access.groups.{asg}"
        if asg not in acf.asgs:
            found.append(Problem(where, f"ASG {asg!r} is not defined in {origin}",
                                 f"defined: {', '.join(sorted(acf.asgs)) or 'none'}"))
            continue
        for member in [listed] if isinstance(listed, str) else listed:
            full = (member if member in names else prefix + member
                    if prefix + member in names else attrs.get(member))
            if full is None and unknown_ok:
                continue
            if full is None:
                found.append(Problem(where, f"no PV {member!r}", "use a PV name with or "
                                     "without the prefix, or the attribute name"))
            elif full in groups and groups[full] != asg:
                found.append(Problem(where, f"PV {member!r} is already in group "
                                     f"{groups[full]!r}", "a PV belongs to one group"))
            else:
                groups[full] = asg
    if found:
        raise ConfigError.of(source, found)
    if "DEFAULT" not in acf.asgs and len(groups) < len(names):
        acf.warnings.append(f"{origin}: no ASG(DEFAULT): PVs not assigned to a group get no "
                            "access at all (as in EPICS)")
    return Ruleset(acf, groups, origin)


class AccessPolicy:
    """The rules in force; ``reload()`` swaps them atomically and tells listeners.

    Reads are lock-free: protocol threads (p4p's) read :attr:`current`, and the
    event loop replaces it with a new immutable :class:`Ruleset`.
    """

    def __init__(self, ruleset: Ruleset, loader: Callable[[], Ruleset]) -> None:
        self.current = ruleset
        self._loader = loader
        self._listeners: list[Callable[[], None]] = []
        self.reloads = 0

    def on_reload(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` in the event loop after each successful reload."""
        self._listeners.append(fn)

    def load_new(self) -> Ruleset:
        """Read and parse the rules again (blocking: run it in a thread)."""
        return self._loader()

    def install(self, ruleset: Ruleset) -> None:
        """Make ``ruleset`` current and notify listeners (in the event loop)."""
        self.current = ruleset
        self.reloads += 1
        for fn in tuple(self._listeners):
            try:
                fn()
            except Exception:
                log.exception("access rules listener failed")

    def log_warnings(self, ruleset: Ruleset | None = None) -> None:
        for text in (ruleset or self.current).acf.warnings:
            log.warning("access rules: %s", text)

    async def reload(self) -> bool:
        """Re-read the rules (SIGHUP). On any error keep the old rules and log why."""
        import asyncio

        try:
            ruleset = await asyncio.to_thread(self.load_new)
        except Exception as exc:
            log.error("access rules NOT reloaded, keeping the previous rules: %s", exc)
            return False
        self.log_warnings(ruleset)
        self.install(ruleset)
        log.info("access rules reloaded from %s: %s", ruleset.origin, ruleset.summary())
        return True
