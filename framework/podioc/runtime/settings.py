"""Effective server settings, read once at start-up from config and environment.

EPICS variables mean what they mean to any EPICS server; where the instance
config's ``epics:`` block and the process environment both set one, the
environment wins (an operator can override a config without editing it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config.epicsvars import parse_number, parse_port, parse_yes_no, split_address_list


def _split(value: str) -> tuple[str, ...]:
    return tuple(split_address_list(value))


@dataclass(frozen=True)
class Settings:
    """Server-side EPICS settings for both protocols."""

    ca_server_port: int = 5064
    ca_beacon_port: int = 5065
    ca_intf_addrs: tuple[str, ...] = ()
    ca_beacon_addrs: tuple[str, ...] = ()
    ca_auto_beacon: bool = True
    ca_beacon_period: float = 15.0
    ca_max_array_bytes: int = 16384
    ca_conn_tmo: float = 30.0
    pva_server_port: int = 5075
    pva_broadcast_port: int = 5076
    pva_intf_addrs: tuple[str, ...] = ()
    pva_beacon_addrs: tuple[str, ...] = ()
    pva_auto_beacon: bool = True
    source: str = "<environment>"
    raw: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], source: str = "<environment>") -> Settings:
        """Parse EPICS_* variables; bad values name the variable and the fix."""
        raw = {k: v for k, v in env.items() if k.startswith("EPICS_")}

        def port(*keys: str, default: int) -> int:
            for key in keys:
                value = parse_port(key, raw.get(key), source=source)
                if value is not None:
                    return value
            return default

        def flag(key: str, default: bool) -> bool:
            return parse_yes_no(key, raw.get(key), default, source=source)

        def number(key: str, default: float, minimum: float) -> float:
            return parse_number(key, raw.get(key), default, minimum, source=source)

        ca_port = port("EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT", default=5064)
        return cls(
            ca_server_port=ca_port,
            ca_beacon_port=port("EPICS_CAS_BEACON_PORT", "EPICS_CA_REPEATER_PORT",
                                default=5065),
            ca_intf_addrs=_split(raw.get("EPICS_CAS_INTF_ADDR_LIST", "")),
            ca_beacon_addrs=_split(raw.get("EPICS_CAS_BEACON_ADDR_LIST", "")),
            ca_auto_beacon=flag("EPICS_CAS_AUTO_BEACON_ADDR_LIST", True),
            ca_beacon_period=number("EPICS_CAS_BEACON_PERIOD", 15.0, 0.1),
            ca_max_array_bytes=int(number("EPICS_CA_MAX_ARRAY_BYTES", 16384, 16384)),
            ca_conn_tmo=number("EPICS_CA_CONN_TMO", 30.0, 1),
            pva_server_port=port("EPICS_PVAS_SERVER_PORT", "EPICS_PVA_SERVER_PORT",
                                 default=5075),
            pva_broadcast_port=port("EPICS_PVAS_BROADCAST_PORT", "EPICS_PVA_BROADCAST_PORT",
                                    default=5076),
            pva_intf_addrs=_split(raw.get("EPICS_PVAS_INTF_ADDR_LIST", "")),
            pva_beacon_addrs=_split(raw.get("EPICS_PVAS_BEACON_ADDR_LIST", "")),
            pva_auto_beacon=flag("EPICS_PVAS_AUTO_BEACON_ADDR_LIST", True),
            source=source, raw=raw,
        )

    def caproto_env(self) -> dict[str, str]:
        """The variables caproto reads from ``os.environ`` (it ignores EPICS_CAS_SERVER_PORT)."""
        return {
            "EPICS_CA_SERVER_PORT": str(self.ca_server_port),
            "EPICS_CAS_BEACON_PORT": str(self.ca_beacon_port),
            "EPICS_CAS_INTF_ADDR_LIST": " ".join(self.ca_intf_addrs),
            "EPICS_CAS_BEACON_ADDR_LIST": " ".join(self.ca_beacon_addrs),
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "YES" if self.ca_auto_beacon else "NO",
            "EPICS_CAS_BEACON_PERIOD": str(self.ca_beacon_period),
            "EPICS_CA_MAX_ARRAY_BYTES": str(self.ca_max_array_bytes),
        }

    def pva_conf(self) -> dict[str, str]:
        """Configuration for p4p's ``Server(conf=..., useenv=False)``."""
        conf = {
            "EPICS_PVAS_SERVER_PORT": str(self.pva_server_port),
            "EPICS_PVAS_BROADCAST_PORT": str(self.pva_broadcast_port),
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "YES" if self.pva_auto_beacon else "NO",
        }
        if self.pva_intf_addrs:
            conf["EPICS_PVAS_INTF_ADDR_LIST"] = " ".join(self.pva_intf_addrs)
        if self.pva_beacon_addrs:
            conf["EPICS_PVAS_BEACON_ADDR_LIST"] = " ".join(self.pva_beacon_addrs)
        return conf
