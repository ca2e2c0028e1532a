"""GVSP frame assembly from hand-built packets: order, loss, stale and bad packets."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from harness.gige_packets import frame_packets, gvsp, leader, ramp, trailer
from podioc.gige.gvsp import Frame, FrameAssembler, MalformedPacket, parse_leader, parse_packet

CHUNK = 1000


def assembler() -> tuple[FrameAssembler, list[Frame], list[str]]:
    frames: list[Frame] = []
    errors: list[str] = []
    return FrameAssembler(CHUNK, frames.append, errors.append), frames, errors


def test_frame_assembled_in_order() -> None:
    asm, frames, errors = assembler()
    image = ramp(64, 48, 7)
    for packet in frame_packets(7, image, CHUNK):
        asm.feed(packet)
    assert errors == [] and len(frames) == 1
    assert frames[0].block_id == 7 and frames[0].pixel_format == "Mono8"
    assert frames[0].timestamp == 123456789
    np.testing.assert_array_equal(frames[0].image, image)
    assert asm.stats.frames == 1 and asm.stats.packets == 6


def test_out_of_order_and_duplicate_payload() -> None:
    asm, frames, _ = assembler()
    image = ramp(64, 48, 3)
    packets = frame_packets(3, image, CHUNK)
    body = packets[1:-1]
    for packet in [packets[0], *reversed(body), body[0], packets[-1]]:
        asm.feed(packet)
    np.testing.assert_array_equal(frames[0].image, image)
    assert asm.stats.packets_ignored == 1


def test_missing_packet_counted_and_frame_dropped() -> None:
    asm, frames, errors = assembler()
    packets = frame_packets(9, ramp(64, 48, 9), CHUNK)
    for packet in packets[:2] + packets[3:]:
        asm.feed(packet)
    assert frames == []
    assert asm.stats.frames_incomplete == 1 and asm.stats.packets_missing == 1
    assert errors == ["frame 9 incomplete: 1 data packets missing"]


def test_lost_trailer_closes_block_when_next_starts() -> None:
    asm, frames, _ = assembler()
    first = frame_packets(1, ramp(64, 48, 1), CHUNK)
    second = frame_packets(2, ramp(64, 48, 2), CHUNK)
    for packet in first[:-1] + second:
        asm.feed(packet)
    assert [f.block_id for f in frames] == [1, 2]
    assert asm.stats.packets_missing == 1 and asm.stats.frames_incomplete == 0


def test_lost_leader_makes_frame_incomplete() -> None:
    asm, frames, _ = assembler()
    first = frame_packets(1, ramp(64, 48, 1), CHUNK)
    for packet in first[1:] + frame_packets(2, ramp(64, 48, 2), CHUNK):
        asm.feed(packet)
    assert [f.block_id for f in frames] == [2]
    assert asm.stats.frames_incomplete == 1 and asm.stats.packets_missing == 1


def test_packet_of_closed_block_is_ignored() -> None:
    asm, frames, _ = assembler()
    packets = frame_packets(4, ramp(64, 48, 4), CHUNK)
    for packet in [*packets, packets[2], packets[0]]:
        asm.feed(packet)
    assert len(frames) == 1 and asm.stats.packets_ignored == 2
    assert asm.stats.frames_incomplete == 0


@pytest.mark.parametrize(("datagram", "message"), [
    (b"\x00\x01", "shorter than a GVSP header"),
    (gvsp(1, 5, 0), "packet format 5"),
    (leader(1, 64, 48, pixfmt=0x12345678), "pixel format 0x12345678"),
    (leader(1, 0, 48), "not plausible"),
    (gvsp(1, 1, 0, b"\x00" * 8), "too short"),
])
def test_malformed_packets_counted(datagram: bytes, message: str) -> None:
    asm, frames, errors = assembler()
    asm.feed(datagram)
    assert asm.stats.packets_malformed == 1 and frames == []
    assert message in errors[0]


def test_payload_beyond_image_or_oversized_refused() -> None:
    asm, frames, errors = assembler()
    asm.feed(leader(1, 10, 10))          # 100 bytes: one data packet
    asm.feed(gvsp(1, 3, 2, b"x" * 10))
    asm.feed(gvsp(1, 3, 1, b"x" * (CHUNK + 1)))
    assert asm.stats.packets_malformed == 2
    assert "outside 1..1" in errors[0] and "exceeds" in errors[1]
    asm.feed(gvsp(1, 3, 1, b"x" * 100))
    asm.feed(trailer(1, 2, 10))
    assert frames[0].image.shape == (10, 10)


def test_extended_id_packets() -> None:
    header = struct.pack(">HHIQI", 0, 0, (0x80 | 3) << 24, 2**40 + 5, 70000)
    packet = parse_packet(header + b"abc")
    assert (packet.block_id, packet.packet_id, packet.format) == (2**40 + 5, 70000, 3)
    assert bytes(packet.data) == b"abc"


def test_leader_fields() -> None:
    parsed = parse_leader(parse_packet(leader(1, 640, 480)).data)
    assert (parsed.width, parsed.height, parsed.size, parsed.dtype) == (640, 480, 307200, "uint8")


def test_rejects_bad_chunk() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        FrameAssembler(0, lambda frame: None)


def test_malformed_packet_class_is_value_error() -> None:
    assert issubclass(MalformedPacket, ValueError)


def test_huge_leader_refused_without_allocating() -> None:
    frames: list[Frame] = []
    errors: list[str] = []
    asm = FrameAssembler(CHUNK, frames.append, errors.append, max_size=10_000)
    asm.feed(leader(1, 65535, 65535))
    assert asm.stats.packets_malformed == 1
    assert "65535x65535 Mono8 (4294836225 bytes), more than the 10000 bytes" in errors[0]
