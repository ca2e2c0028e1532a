"""GVCP client against an in-process UDP device: ack ids, retries, NACKs, discovery."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from podioc.gige import gvcp
from podioc.gige.discovery import discover
from podioc.gige.errors import GvcpError, GvcpTimeout


class Device:
    """A GVCP responder on 127.0.0.1: drops the first ``drop`` commands, NACKs 0xdead."""

    def __init__(self, drop: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.drop = drop
        self.received: list[tuple[int, int]] = []     # (command, request id)
        self.regs: dict[int, int] = {0x100: 42}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def ack(self, status: int, answer: int, req_id: int, payload: bytes) -> bytes:
        return struct.pack(">HHHH", status, answer, len(payload), req_id) + payload

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            _, _, cmd, _, req_id = struct.unpack_from(">BBHHH", data)
            self.received.append((cmd, req_id))
            if self.drop:
                self.drop -= 1
                continue
            body = data[8:]
            if cmd == gvcp.READREG_CMD:
                addresses = struct.unpack(f">{len(body) // 4}I", body)
                if 0xDEAD in addresses:
                    reply = self.ack(0x8003, gvcp.READREG_ACK, req_id, b"")
                else:
                    # a stale ack (wrong id) first: the client must skip it
                    self.sock.sendto(self.ack(0, gvcp.READREG_ACK, req_id ^ 0x5555,
                                              b"\0\0\0\1"), peer)
                    values = [self.regs.get(a, 0) for a in addresses]
                    reply = self.ack(0, gvcp.READREG_ACK, req_id,
                                     struct.pack(f">{len(values)}I", *values))
            elif cmd == gvcp.WRITEREG_CMD:
                address, value = struct.unpack(">II", body[:8])
                self.regs[address] = value
                reply = self.ack(0, gvcp.WRITEREG_ACK, req_id, b"\0\0\0\1")
            elif cmd == gvcp.READMEM_CMD:
                address, _, count = struct.unpack(">IHH", body[:8])
                text = b"Local:cam.xml;10000;20\0".ljust(600, b"\0")
                reply = self.ack(0, gvcp.READMEM_ACK, req_id,
                                 struct.pack(">I", address) + text[address - 0x200:][:count])
            elif cmd == gvcp.DISCOVERY_CMD:
                payload = bytearray(248)
                payload[36:40] = bytes([127, 0, 0, 1])
                payload[72:78] = b"Vendor"
                payload[216:220] = b"SN01"
                reply = self.ack(0, gvcp.DISCOVERY_ACK, req_id, bytes(payload))
            else:
                continue
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def device() -> Iterator[Device]:
    dev = Device()
    yield dev
    dev.close()


def test_read_write_with_ack_ids(device: Device) -> None:
    client = gvcp.GvcpClient("127.0.0.1", device.port)
    assert client.read_register(0x100) == 42
    client.write_register(0x104, 7)
    assert client.read_registers([0x104, 0x100]) == [7, 42]
    assert client.read_string(0x200, 512) == "Local:cam.xml;10000;20"
    ids = [req for _, req in device.received]
    assert ids == sorted(set(ids)) and 0 not in ids
    client.close()


def test_retry_uses_same_request_id() -> None:
    dev = Device(drop=2)
    try:
        client = gvcp.GvcpClient("127.0.0.1", dev.port, timeout=0.1, retries=3)
        assert client.read_register(0x100) == 42
        assert len({req for _, req in dev.received}) == 1 and len(dev.received) == 3
        assert client.retransmissions == 2
        client.close()
    finally:
        dev.close()


def test_timeout_message_names_camera() -> None:
    dev = Device(drop=100)
    try:
        client = gvcp.GvcpClient("127.0.0.1", dev.port, timeout=0.05, retries=1)
        with pytest.raises(GvcpTimeout, match=r"camera 127.0.0.1:\d+: no answer to READREG "
                                              r"0x100 after 2 attempts"):
            client.read_register(0x100)
        client.close()
    finally:
        dev.close()


def test_nack_raises_with_status(device: Device) -> None:
    client = gvcp.GvcpClient("127.0.0.1", device.port)
    with pytest.raises(GvcpError, match="READREG 0xdead refused with 0x8003 INVALID_ADDRESS"):
        client.read_register(0xDEAD)
    client.close()


def test_unicast_discovery(device: Device) -> None:
    found = discover(["127.0.0.1"], port=device.port, timeout=0.3)
    assert len(found) == 1
    assert (found[0].manufacturer, found[0].serial, found[0].ip) == ("Vendor", "SN01",
                                                                     "127.0.0.1")


def test_parse_ack_rejects_lying_length() -> None:
    assert gvcp.parse_ack(struct.pack(">HHHH", 0, 0x81, 8, 1) + b"\0\0\0\0") is None
    assert gvcp.parse_ack(b"\0\0") is None
