"""Hand-built GVSP/GVCP packets for the GigE Vision unit and fuzz tests."""

from __future__ import annotations

import struct

import numpy as np

MONO8 = 0x01080001


def gvsp(block: int, fmt: int, packet_id: int, data: bytes = b"", status: int = 0) -> bytes:
    """A standard-id GVSP packet."""
    return struct.pack(">HHI", status, block, (fmt << 24) | packet_id) + data


def leader(block: int, width: int, height: int, pixfmt: int = MONO8,
           timestamp: int = 123456789) -> bytes:
    """An image leader packet (packet id 0)."""
    body = struct.pack(">HHQIIIIIHH", 0, 1, timestamp, pixfmt, width, height, 0, 0, 0, 0)
    return gvsp(block, 1, 0, body)


def trailer(block: int, packet_id: int, height: int) -> bytes:
    """A trailer packet."""
    return gvsp(block, 2, packet_id, struct.pack(">HHI", 0, 1, height))


def ramp(width: int, height: int, frame_id: int) -> np.ndarray:
    """The emulator's Mono8 diagonal ramp at gain 0 and exposure 10 ms."""
    y, x = np.mgrid[0:height, 0:width]
    image: np.ndarray = ((x + y + frame_id) % 255).astype(np.uint8)
    return image


def frame_packets(block: int, image: np.ndarray, chunk: int) -> list[bytes]:
    """Leader, data packets of ``chunk`` bytes and trailer for a Mono8 image."""
    height, width = image.shape
    data = image.tobytes()
    parts = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    return ([leader(block, width, height)]
            + [gvsp(block, 3, i + 1, part) for i, part in enumerate(parts)]
            + [trailer(block, len(parts) + 1, height)])
