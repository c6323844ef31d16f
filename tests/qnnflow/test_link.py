"""The host-link protocol of qnnflow.link (and the build timing qnnflow.host reads) against
independent references and a Python model of the board's rules (the RTL itself is tested against
the same code in tests/hw/test_board_top.py)."""

from __future__ import annotations

import pytest

from qnnflow.host import build_accelerator_timing
from qnnflow.link import (
    SEQ_SPACE,
    SYNC,
    FrameParser,
    FrameType,
    LinkFormat,
    Session,
    beats_to_bytes,
    beats_to_words,
    bytes_to_beats,
    crc16,
    encode_frame,
    reply_timeout,
    words_to_beats,
)


def _crc16_reference(data: bytes) -> int:
    """CRC-16/CCITT-FALSE as polynomial division over GF(2), written independently of the
    shift-register form: (init * x^(8n) + message * x^16) mod (x^16 + x^12 + x^5 + 1)."""
    value = (0xFFFF << (8 * len(data))) ^ (int.from_bytes(data, "big") << 16)
    poly = 0x11021
    for bit in range(value.bit_length() - 1, 15, -1):
        if value >> bit & 1:
            value ^= poly << (bit - 16)
    return value


def test_crc16_is_crc16_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1  # the catalogue's check value for CRC-16/CCITT-FALSE
    assert crc16(b"") == 0xFFFF
    for data in (b"\x00", b"\xa5\x01\x07", bytes(range(200))):
        assert crc16(data) == _crc16_reference(data)
        # a message followed by its CRC, most significant byte first, leaves 0: the RTL's check
        assert crc16(data + crc16(data).to_bytes(2, "big")) == 0


def test_frame_layout() -> None:
    frame = encode_frame(FrameType.IMAGE, 7, bytes([1, 2, 3]))
    assert frame[:5] == bytes([SYNC, 0x01, 7, 3, 0]) and frame[5:8] == bytes([1, 2, 3])
    assert frame[-2:] == crc16(frame[1:-2]).to_bytes(2, "big") and len(frame) == 10


def test_crc16_catches_what_the_parser_must_drop() -> None:
    """Every single-bit error and every swap of two neighbouring payload bytes is dropped."""
    frame = encode_frame(FrameType.RESULT, 9, bytes(range(40)))
    for i in range(1, len(frame)):
        for bit in range(8):
            bad = bytearray(frame)
            bad[i] ^= 1 << bit
            assert FrameParser().feed(bytes(bad)) == [], (i, bit)
    for i in range(5, len(frame) - 3):
        bad = bytearray(frame)
        bad[i], bad[i + 1] = bad[i + 1], bad[i]
        if bad != frame:
            assert FrameParser().feed(bytes(bad)) == [], i


def test_beats_are_little_endian_bytes() -> None:
    assert beats_to_bytes([0x123, 0x0FF], 12) == bytes([0x23, 0x01, 0xFF, 0x00])
    assert bytes_to_beats(bytes([0x23, 0x01, 0xFF, 0x00]), 12) == [0x123, 0x0FF]
    with pytest.raises(ValueError, match=r"beat 1 \(0x10\) does not fit in 4 bits"):
        beats_to_bytes([1, 16], 4)


def test_beats_from_packed_words() -> None:
    # two 32-bit words per beat, least significant first (the layout of sim.accel.pack_stream)
    assert words_to_beats([1, 2, 0xFFFFFFFF, 0], 2) == [1 + (2 << 32), 0xFFFFFFFF]
    assert beats_to_words([1 + (2 << 32), 0xFFFFFFFF], 2) == [1, 2, 0xFFFFFFFF, 0]
    with pytest.raises(ValueError, match="3 words are not a whole number of 2-word beats"):
        words_to_beats([1, 2, 3], 2)


def test_the_host_takes_the_accelerator_timing_from_the_build(tmp_path) -> None:
    import json

    assert build_accelerator_timing(tmp_path) == (0.0, 0.0)
    perf = {"latency_us_at_clock": 296.0, "fps_at_clock": 5000.0}
    (tmp_path / "report.json").write_text(json.dumps({"performance": perf}))
    latency, interval = build_accelerator_timing(tmp_path)
    assert latency == pytest.approx(296e-6) and interval == pytest.approx(200e-6)


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
    # 1,100 baud: a request (11 bytes) takes 0.1 s on the line; the timeout is about 0.56 s
    session = Session(fmt, frames, baud=1100, window=3, host_latency_s=0.0)
    assert 0.5 < session.timeout < 0.6
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
    assert fmt.request_bytes == 71 and fmt.response_bytes == 8
    assert fmt.link_fps(115200) == pytest.approx(115200 / 710)


def test_reply_timeout_follows_frame_size_baud_window_and_latency() -> None:
    fmt = LinkFormat(8, 64, 4, 1)  # the digits CNN: 71 request bytes, 8 response bytes
    req, resp = 710 / 115200, 80 / 115200
    # one frame in flight: its request, the accelerator, its response; then x 1.5 and the host's 50 ms
    assert reply_timeout(fmt, 115200, 1) == pytest.approx((req + resp) * 1.5 + 0.05)
    # four in flight: three more requests ahead of it (the slowest stage)
    assert reply_timeout(fmt, 115200, 4, latency_s=0.002) == pytest.approx((req + 0.002 + resp + 3 * req) * 1.5 + 0.05)
    # an accelerator slower than the line paces the pipeline
    assert reply_timeout(fmt, 1_000_000, 4, interval_s=0.01, host_latency_s=0) == pytest.approx(
        (0.00071 + 0.00008 + 3 * 0.01) * 1.5
    )
    # a bigger frame or window waits longer, a faster line less
    big = LinkFormat(8, 784, 32, 10)
    assert reply_timeout(big, 115200, 4) > reply_timeout(fmt, 115200, 4) > reply_timeout(fmt, 115200, 2)
    assert reply_timeout(fmt, 1_000_000, 4) < reply_timeout(fmt, 115200, 4)
    assert Session(fmt, [], baud=1_000_000, window=8).timeout == reply_timeout(fmt, 1_000_000, 8)
    with pytest.raises(ValueError, match="the baud rate must be positive, not 0"):
        reply_timeout(fmt, 0, 4)
    with pytest.raises(ValueError, match=r"window must be 1\.\.128 frames \(SEQ is one byte\), not 200"):
        Session(fmt, [], window=200)


class _Board:
    """A Python model of a board that answers every well-formed image frame, in order, with
    RESULT [(sum of the beats + 1) % 256]; ``lose`` says which received frames get no answer;
    ``late`` maps a received frame's number to bytes sent just before its answer."""

    def __init__(self, fmt: LinkFormat, lose=lambda n, frame: False, late: dict[int, bytes] | None = None):
        self.fmt, self.lose, self.late, self.received, self.seqs = fmt, lose, dict(late or {}), 0, []

    def __call__(self, data: bytes) -> bytes:
        out = b""
        for frame in FrameParser().feed(data):
            self.seqs.append(frame.seq)
            self.received += 1
            out += self.late.pop(self.received - 1, b"")
            if self.lose(self.received - 1, frame):
                continue
            beats = bytes_to_beats(frame.payload, self.fmt.in_width)
            out += encode_frame(FrameType.RESULT, frame.seq, beats_to_bytes([(sum(beats) + 1) % 256], 8))
        return out


def _drive(session: Session, board: _Board, *, step: float, limit: int = 10_000) -> None:
    now = 0.0
    for _ in range(limit):
        if session.done:
            return
        now += step
        session.receive(board(session.poll(now)))
    raise AssertionError(f"the session did not finish: {sum(o is not None for o in session.outputs)} answered")


def test_a_late_answer_to_a_timed_out_frame_is_never_taken_for_a_new_one() -> None:
    """Frame 0's first try gets no answer in time; its answer (wrong for any other frame) comes
    once the SEQ space has been cycled through, just before the answer to the 257th frame sent.
    An allocator that frees a SEQ at its timeout has handed SEQ 0 to that frame, and takes the
    late answer as its output; the session drops it as stale."""
    fmt = LinkFormat(8, 1, 8, 1)
    frames = [[i % 200] for i in range(600)]
    at = SEQ_SPACE  # the 257th frame the board receives: SEQ 0 again, for a SEQ freed at its timeout
    board = _Board(fmt, lose=lambda n, frame: n == 0, late={at: encode_frame(FrameType.RESULT, 0, bytes([0xEE]))})
    session = Session(fmt, frames, baud=10_000, window=1, host_latency_s=0.0)
    _drive(session, board, step=session.timeout / 3)
    assert not board.late
    assert session.outputs == [[(f[0] + 1) % 256] for f in frames]
    assert session.stale == 1 and session.errors["no answer"] == 1
    # SEQ 0 was kept out of use until its late answer came, and is used again after it
    assert board.seqs[0] == 0 and 0 not in board.seqs[1 : at + 1]
    assert 0 in board.seqs[at + 1 :] and not session.retired


def test_a_timed_out_seq_without_a_late_answer_rests_a_full_cycle() -> None:
    fmt = LinkFormat(8, 1, 8, 1)
    frames = [[i % 200] for i in range(700)]
    board = _Board(fmt, lose=lambda n, frame: n in (3, 300))
    session = Session(fmt, frames, baud=10_000, window=2, host_latency_s=0.0)
    _drive(session, board, step=session.timeout / 3)
    assert session.outputs == [[(f[0] + 1) % 256] for f in frames]
    assert session.errors["no answer"] == 2 and session.stale == 0
    for lost in (3, 300):
        seq = board.seqs[lost]
        later = board.seqs[lost + 1 :]
        # handed out again only after a full cycle of the SEQ space (at most two more in flight)
        assert seq not in later[: SEQ_SPACE - 2], f"SEQ {seq} of lost frame {lost} reused too early"


def test_a_silent_board_ends_the_session_without_a_hang() -> None:
    """Every SEQ ends up retired (128 in flight, nothing answers): the session still gives up
    after its retries instead of waiting for a SEQ for ever."""
    fmt = LinkFormat(8, 1, 8, 1)
    frames = [[1]] * 300
    board = _Board(fmt, lose=lambda n, frame: True)
    session = Session(fmt, frames, baud=10_000, window=128, retries=2, host_latency_s=0.0)
    _drive(session, board, step=session.timeout / 2)
    assert session.outputs == [None] * 300 and session.errors["no answer"] == 3 * 300
