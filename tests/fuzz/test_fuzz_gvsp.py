"""Property tests of the GVSP receiver: any datagram sequence is handled without an
exception, the counters add up, delivered frames have their announced shape, and an
unedited stream gives exactly its frames with the emulator's pattern.

Streams are built from valid frames of the emulator's pattern, then packets are
dropped, duplicated, reordered, truncated, bit-flipped, re-labelled with other
block ids, or replaced by random bytes.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from harness.gige_packets import frame_packets, gvsp, leader, ramp
from podioc.gige.gvsp import Frame, FrameAssembler

from .conftest import FUZZ

CHUNK = 500
W, H = 40, 30


def valid_stream(blocks: list[int]) -> list[bytes]:
    out: list[bytes] = []
    for block in blocks:
        out += frame_packets(block, ramp(W, H, block), CHUNK)
    return out


def mutate(packet: bytes, how: int, data: bytes) -> bytes:
    if how == 0:
        return packet[:len(data) % (len(packet) + 1)]                  # truncate
    if how == 1 and packet:
        buf = bytearray(packet)
        buf[len(data) % len(buf)] ^= 1 << (len(data) % 8)              # flip one bit
        return bytes(buf)
    if how == 2 and len(packet) >= 8:                                  # other block id
        return packet[:2] + struct.pack(">H", len(data)) + packet[4:]
    if how == 3:
        return data                                                    # random bytes
    if how == 4:
        return leader(len(data) % 7, 65535, 65535)                     # absurd leader
    return gvsp(len(data) % 7, 3, len(data) * 977 % 0xFFFFFF, data)    # stray payload


@FUZZ
@given(blocks=st.lists(st.integers(0, 6), min_size=1, max_size=6),
       edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 8), st.binary(max_size=64)),
                      max_size=25),
       shuffle=st.randoms(use_true_random=False))
def test_receiver_survives_any_stream(blocks: list[int], edits: list[tuple[int, int, bytes]],
                                      shuffle: object) -> None:
    packets = valid_stream(blocks)
    for position, how, data in edits:
        index = position % len(packets)
        if how == 6:
            del packets[index]
            if not packets:
                packets.append(b"")
        elif how == 7:
            packets.insert(index, packets[(index * 7) % len(packets)])   # duplicate
        elif how == 8:
            j = (index * 13) % len(packets)
            packets[index], packets[j] = packets[j], packets[index]      # reorder
        else:
            packets[index] = mutate(packets[index], how, data)
    frames: list[Frame] = []
    asm = FrameAssembler(CHUNK, frames.append, max_size=1 << 20)
    for packet in packets:
        asm.feed(packet)
    stats = asm.stats
    assert stats.packets == len(packets)
    assert stats.frames == len(frames)
    for frame in frames:
        # a frame is delivered only with all its data packets; bit flips may alter data
        # of an honest packet, so check shape always and content when no edit happened
        assert frame.image.dtype == np.uint8 and frame.image.ndim == 2
    if not edits:
        assert [f.block_id for f in frames] == [b for i, b in enumerate(blocks)
                                                if b not in blocks[:i] or blocks[i - 1] != b]
        for frame in frames:
            np.testing.assert_array_equal(frame.image, ramp(W, H, frame.block_id))
