"""GigE Vision discovery: DISCOVERY_CMD by broadcast or unicast, answers parsed."""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

from .gvcp import (
    DISCOVERY_ACK,
    DISCOVERY_CMD,
    FLAG_ACK_REQUIRED,
    FLAG_BROADCAST_ACK,
    GVCP_PORT,
    command,
    parse_ack,
)

#: Size of a DISCOVERY_ACK payload.
DISCOVERY_ACK_SIZE = 248


@dataclass(frozen=True)
class DeviceInfo:
    """One device's discovery answer."""

    address: str          # where the answer came from
    port: int
    mac: str
    ip: str               # the device's own current IP field
    manufacturer: str
    model: str
    version: str
    serial: str
    user_name: str


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_discovery_ack(payload: bytes, source: tuple[str, int]) -> DeviceInfo | None:
    """The device described by a DISCOVERY_ACK payload, or None when it is too short."""
    if len(payload) < DISCOVERY_ACK_SIZE:
        return None
    mac_hi, mac_lo = struct.unpack_from(">HI", payload, 10)
    mac = ":".join(f"{b:02x}" for b in struct.pack(">HI", mac_hi, mac_lo))
    ip = str(ipaddress.IPv4Address(payload[36:40]))
    return DeviceInfo(address=source[0], port=source[1], mac=mac, ip=ip,
                      manufacturer=_text(payload[72:104]), model=_text(payload[104:136]),
                      version=_text(payload[136:168]), serial=_text(payload[216:232]),
                      user_name=_text(payload[232:248]))


def discover(targets: list[str] | None = None, *, timeout: float = 1.0, attempts: int = 2,
             bind: str = "", port: int = GVCP_PORT) -> list[DeviceInfo]:
    """Devices answering a discovery sent to ``targets`` (default: broadcast).

    A target is an address (unicast to one device) or a broadcast address.
    Answers are collected for ``timeout`` seconds per attempt; each device is
    listed once.
    """
    targets = targets or ["255.255.255.255"]
    found: dict[tuple[str, int], DeviceInfo] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((bind, 0))
        for attempt in range(attempts):
            req_id = attempt + 1
            packet = command(DISCOVERY_CMD, b"", req_id,
                             flags=FLAG_ACK_REQUIRED | FLAG_BROADCAST_ACK)
            for target in targets:
                try:
                    sock.sendto(packet, (target, port))
                except OSError:
                    continue          # e.g. no route for a broadcast: nothing found there
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, source = sock.recvfrom(2048)
                except TimeoutError:
                    break
                ack = parse_ack(data)
                if ack is None or ack.answer != DISCOVERY_ACK or ack.status != 0:
                    continue
                info = parse_discovery_ack(ack.payload, source)
                if info is not None:
                    found.setdefault(source, info)
            if found:
                break
    finally:
        sock.close()
    return sorted(found.values(), key=lambda d: (d.address, d.serial))
