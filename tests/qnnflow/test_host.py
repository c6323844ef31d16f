"""The host-link protocol of qnnflow.host against independent references and a Python model of
the board's rules (the RTL itself is tested against the same code in tests/hw/test_board_top.py)."""

from __future__ import annotations

import pytest

from qnnflow.host import (
    SYNC,
    FrameParser,
    FrameType,
    LinkFormat,
    Session,
    beats_to_bytes,
    bytes_to_beats,
    crc8,
    encode_frame,
)


def test_crc8_is_crc8_smbus() -> None:
    assert crc8(b"123456789") == 0xF4  # the catalogue's check value for CRC-8/SMBUS
    assert crc8(b"") == 0


def test_frame_layout() -> None:
    frame = encode_frame(FrameType.IMAGE, 7, bytes([1, 2, 3]))
    assert frame[:5] == bytes([SYNC, 0x01, 7, 3, 0]) and frame[5:8] == bytes([1, 2, 3])
    assert frame[-1] == crc8(frame[1:-1])


def test_beats_are_little_endian_bytes() -> None:
    assert beats_to_bytes([0x123, 0x0FF], 12) == bytes([0x23, 0x01, 0xFF, 0x00])
    assert bytes_to_beats(bytes([0x23, 0x01, 0xFF, 0x00]), 12) == [0x123, 0x0FF]
    with pytest.raises(ValueError, match=r"beat 1 \(0x10\) does not fit in 4 bits"):
        beats_to_bytes([1, 16], 4)


def test_parser_skips_noise_and_resyncs_after_a_bad_frame() -> None:
    good = encode_frame(FrameType.RESULT, 1, b"\x05")
    bad = bytearray(encode_frame(FrameType.RESULT, 2, b"\x06"))
    bad[5] ^= 1
    parser = FrameParser()
    frames = parser.feed(b"\x00\x11" + bytes(bad) + good[:3])
    frames += parser.feed(good[3:])
    assert [(f.type, f.seq, f.payload) for f in frames] == [(FrameType.RESULT, 1, b"\x05")]
    assert parser.bad_crc == 1


def _board(fmt: LinkFormat, data: bytes) -> bytes:
    """A Python model of the board for well-formed input: one answer per frame, output = sum % 16."""
    out = b""
    for frame in FrameParser().feed(data):
        beats = bytes_to_beats(frame.payload, fmt.in_width)
        out += encode_frame(FrameType.RESULT, frame.seq, beats_to_bytes([sum(beats) % 16], fmt.out_width))
    return out


def test_session_windows_matches_and_resends() -> None:
    fmt = LinkFormat(8, 4, 4, 1)
    frames = [[i, i + 1, 2, 3] for i in range(10)]
    session = Session(fmt, frames, window=3, timeout=1.0)
    first = session.poll(0.0)
    assert len(first) == 3 * fmt.request_bytes  # the window
    # the board answers the first with an error: that frame is sent again, the others complete
    parser = FrameParser()
    sent = parser.feed(first)
    session.receive(encode_frame(FrameType.ERR_CHECKSUM, sent[0].seq))
    session.receive(_board(fmt, first[fmt.request_bytes :]))
    now = 0.0
    lost = True
    while not session.done:
        now += 0.1
        data = session.poll(now)
        if lost and data:  # the next batch is lost on the line: the session times out and resends
            lost = False
            continue
        session.receive(_board(fmt, data))
    assert session.outputs == [[sum(f) % 16] for f in frames]
    assert session.errors["ERR_CHECKSUM"] == 1 and session.errors["no answer"] >= 1 and session.resent >= 2


def test_link_rate() -> None:
    fmt = LinkFormat(8, 64, 4, 1)
    assert fmt.request_bytes == 70 and fmt.response_bytes == 7
    assert fmt.link_fps(115200) == pytest.approx(115200 / 700)
