"""Access rules: who may read and write which PV, the same on CA and PVA.

- :mod:`.acf`: the EPICS Access Security file format (UAG, HAG, ASG, RULE),
  CALC-free subset; :class:`Access` rights.
- :mod:`.hosts`: host names resolved to addresses at load time; client
  addresses normalised. Host rules match the address the server sees.
- :mod:`.policy`: the config's ``access:`` block, the reloadable policy.

Resource limits (client cap, message size, log rate) are :mod:`podioc.limits`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import is_config_path
from ..config import load as load_config
from ..errors import ConfigError
from ..model import IOC
from .acf import ACF, Access, Rule, parse
from .policy import AccessPolicy, Ruleset, load_ruleset

if TYPE_CHECKING:
    from ..config import InstanceConfig

log = logging.getLogger(__name__)

__all__ = ["ACF", "Access", "AccessPolicy", "Rule", "Ruleset", "load_ruleset", "parse",
           "policy_for"]


def policy_for(cfg: InstanceConfig, ioc: IOC, extra_suffixes: Iterable[str] = (), *,
               early: bool = False) -> AccessPolicy | None:
    """The access policy of an instance, or None when its config has no ``access:`` block.

    ``extra_suffixes`` names PVs added later (the health PVs) so groups may list
    them. Group members may be PV names (with or without the prefix) or attribute
    paths (``setpoint``, ``psu.ch[3].voltage``). Raises :class:`ConfigError`
    (file, line, reason) on a bad block or rules. SIGHUP reloads re-read the
    instance config's ``access:`` block and its file. ``early``: a check before
    the startup hooks ran (they may add PVs): members naming no PV yet are
    skipped and nothing is logged; build the policy again once they ran.
    """
    if not cfg.access:
        return None
    extra = tuple(extra_suffixes)

    def load(block: dict[str, object], source: str, base_dir: Path) -> Ruleset:
        names = [*ioc.pvs, *(ioc.prefix + s for s in extra)]
        attrs = {path: live.name for path, live in ioc.pv_paths().items()}
        return load_ruleset(block, source, base_dir, names, ioc.prefix, attrs,
                            unknown_ok=early)

    def reload() -> Ruleset:
        if not is_config_path(cfg.source):
            return load(cfg.access, cfg.source, cfg.base_dir)
        fresh = load_config(cfg.source)
        if not fresh.access:
            raise ConfigError(cfg.source, "access", "the access: block was removed",
                              "restart the IOC to serve without access rules")
        return load(fresh.access, fresh.source, fresh.base_dir)

    policy = AccessPolicy(load(cfg.access, cfg.source, cfg.base_dir), reload)
    if early:
        return policy
    policy.log_warnings()
    log.info("access rules from %s: %s", policy.current.origin, policy.current.summary())
    return policy
