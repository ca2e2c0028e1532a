"""The one parser of EPICS variable values: YES/NO flags, address lists, ports, numbers.

Used for the environment and for the instance config's ``epics:`` block alike,
so a value means the same wherever it is set, and a value that means nothing
is refused with the variable's name and the accepted values, never guessed.

YES/NO flags accept ``YES`` and ``NO`` in any case, as EPICS documents them,
and also ``Y``/``N``, ``TRUE``/``FALSE``, ``1``/``0`` and ``ON``/``OFF``
(what people type in container and Kubernetes settings). Anything else, e.g.
``enable``, is an error: libca reads any value without ``NO`` in it as YES,
which silently turns a typo into the opposite of what was meant.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

_YES = frozenset({"yes", "y", "true", "1", "on"})
_NO = frozenset({"no", "n", "false", "0", "off"})
#: What a YES/NO variable accepts, for messages.
YES_NO_ACCEPTED = "YES or NO in any case; also Y/N, TRUE/FALSE, 1/0, ON/OFF"
PORT_FIX = "use 0..65535 (0 picks a free port)"


def parse_yes_no(name: str, value: str | None, default: bool, *,
                 source: str = "<environment>") -> bool:
    """The YES/NO variable ``name`` set to ``value``; ``default`` when unset or blank.

    Raises :class:`ConfigError` naming the variable and the accepted values for
    anything else.
    """
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ConfigError(source, name, f"{value!r} is not YES or NO", f"accepted: {YES_NO_ACCEPTED}")


def split_address_list(value: str | None) -> list[str]:
    """An EPICS address list: entries separated by spaces (or commas); blank is empty."""
    return [v for v in (value or "").replace(",", " ").split() if v]


def parse_port(name: str, value: str | None, *, source: str = "<environment>") -> int | None:
    """A port number 0..65535; None when unset or blank."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(source, name, f"{value!r} is not a port number", PORT_FIX)
    return port


def parse_number(name: str, value: str | None, default: float, minimum: float, *,
                 source: str = "<environment>") -> float:
    """A number >= ``minimum``; ``default`` when unset or blank."""
    text = (value or "").strip()
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        number = minimum - 1
    if not number >= minimum:  # also refuses nan
        raise ConfigError(source, name, f"{text!r} must be a number >= {minimum:g}",
                          f"e.g. {name}={default:g}")
    return number


@dataclass(frozen=True)
class EpicsVariable:
    """A variable podioc reads: its kind (for checking and the JSON Schema) and meaning."""

    kind: str  # "port", "yes_no", "addresses" or "number"
    description: str
    minimum: float = 0.0
    default: float = 0.0

    def check(self, name: str, value: str, source: str) -> None:
        """Raise :class:`ConfigError` when ``value`` is not valid for this variable."""
        if self.kind == "port":
            parse_port(name, value, source=source)
        elif self.kind == "yes_no":
            parse_yes_no(name, value, True, source=source)
        elif self.kind == "number":
            parse_number(name, value, self.default, self.minimum, source=source)


def _port(text: str) -> EpicsVariable:
    return EpicsVariable("port", text)


def _flag(text: str) -> EpicsVariable:
    return EpicsVariable("yes_no", text)


def _list(text: str) -> EpicsVariable:
    return EpicsVariable("addresses", text)


#: The EPICS variables podioc reads (server side, and client side for ``probe``/``doctor``).
VARIABLES: dict[str, EpicsVariable] = {
    "EPICS_CA_SERVER_PORT": _port("CA server TCP and UDP search port (default 5064)"),
    "EPICS_CAS_SERVER_PORT": _port("CA server port; wins over EPICS_CA_SERVER_PORT"),
    "EPICS_CA_REPEATER_PORT": _port("CA beacon (repeater) port (default 5065)"),
    "EPICS_CAS_BEACON_PORT": _port("CA beacon port; wins over EPICS_CA_REPEATER_PORT"),
    "EPICS_CAS_INTF_ADDR_LIST": _list("addresses the CA server binds (default: all)"),
    "EPICS_CAS_BEACON_ADDR_LIST": _list("extra addresses CA beacons are sent to"),
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": _flag(
        f"send CA beacons to every interface's broadcast address ({YES_NO_ACCEPTED})"),
    "EPICS_CAS_BEACON_PERIOD": EpicsVariable("number", "seconds between CA beacons "
                                             "(default 15)", minimum=0.1, default=15.0),
    "EPICS_CA_MAX_ARRAY_BYTES": EpicsVariable("number", "largest CA array payload in bytes "
                                              "(default 16384)", minimum=16384, default=16384),
    "EPICS_CA_CONN_TMO": EpicsVariable("number", "seconds a CA circuit may be silent before "
                                       "the server sends it an echo (default 30)",
                                       minimum=1, default=30.0),
    "EPICS_PVA_SERVER_PORT": _port("PVA server TCP port (default 5075)"),
    "EPICS_PVAS_SERVER_PORT": _port("PVA server TCP port; wins over EPICS_PVA_SERVER_PORT"),
    "EPICS_PVA_BROADCAST_PORT": _port("PVA UDP search port (default 5076)"),
    "EPICS_PVAS_BROADCAST_PORT": _port("PVA UDP search port; wins over "
                                       "EPICS_PVA_BROADCAST_PORT"),
    "EPICS_PVAS_INTF_ADDR_LIST": _list("addresses the PVA server binds (default: all)"),
    "EPICS_PVAS_BEACON_ADDR_LIST": _list("extra addresses PVA beacons are sent to"),
    "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": _flag(
        f"send PVA beacons to every interface's broadcast address ({YES_NO_ACCEPTED})"),
    "EPICS_CA_ADDR_LIST": _list("where CA clients started here search"),
    "EPICS_CA_AUTO_ADDR_LIST": _flag(
        f"CA clients also search every interface's broadcast address ({YES_NO_ACCEPTED})"),
    "EPICS_CA_NAME_SERVERS": _list("CA name servers (host:port) clients search over TCP"),
    "EPICS_PVA_ADDR_LIST": _list("where PVA clients started here search"),
    "EPICS_PVA_AUTO_ADDR_LIST": _flag(
        f"PVA clients also search every interface's broadcast address ({YES_NO_ACCEPTED})"),
    "EPICS_PVA_NAME_SERVERS": _list("PVA name servers (host:port) clients search over TCP"),
}


def check_variable(name: str, value: str, *, source: str = "<environment>") -> None:
    """Raise :class:`ConfigError` when a known variable's value is invalid (others pass)."""
    known = VARIABLES.get(name)
    if known is not None:
        known.check(name, value, source)
