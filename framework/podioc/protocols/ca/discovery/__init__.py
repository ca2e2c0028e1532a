"""CA discovery: search answering, unicast fan-out, beacons and the interface plans
they share with ``podioc doctor``."""

from .interfaces import LOOPBACK_BROADCAST, AddressBook, Interface, interfaces
from .plans import (
    BeaconTarget,
    SearchBinding,
    beacon_targets,
    host_port,
    search_bindings,
)
from .relay import Relay
from .search import Discovery, SequenceEchoBroadcaster
from .sockets import SearchSocket

__all__ = [
    "LOOPBACK_BROADCAST",
    "AddressBook",
    "BeaconTarget",
    "Discovery",
    "Interface",
    "Relay",
    "SearchBinding",
    "SearchSocket",
    "SequenceEchoBroadcaster",
    "beacon_targets",
    "host_port",
    "interfaces",
    "search_bindings",
]
