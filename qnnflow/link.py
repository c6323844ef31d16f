"""The UART link protocol between the host and a board: frame format, CRC, and the host's
side of the conversation as a state machine without I/O (:class:`Session`).

This module is the one definition of the protocol, a base module below every layer (``flows/``
sizes the link from it, ``sim/`` drives the board top's bench with it, :mod:`qnnflow.host` runs it
over a serial port). ``hw/frame_decoder.sv`` and ``hw/frame_encoder.sv`` implement the board side.

Frame, both directions::

    SYNC 0xA5 | TYPE | SEQ | LEN[7:0] | LEN[15:8] | LEN payload bytes | CRC[15:8] | CRC[7:0]

CRC: CRC-16/CCITT-FALSE of TYPE..payload (polynomial 0x1021, initial value 0xFFFF, no
reflection, no final XOR; check value 0x29B1 for ``b"123456789"``), most significant byte first,
so that the CRC over TYPE..CRC[7:0] of a good frame is 0. The host sends ``IMAGE`` frames whose
payload is the accelerator's input beats, each as ``ceil(width / 8)`` bytes, least significant
byte first. The board answers every frame header, in the order the frames came, with one frame
carrying the same SEQ: ``RESULT`` (the output beats, packed the same way) or an error
(``ERR_*``, no payload). A frame the board abandons because bytes stopped coming gets
``ERR_TIMEOUT``. A corrupted SYNC byte makes the board skip the frame without an answer; the
session then resends it after its timeout (:func:`reply_timeout`), with a new SEQ, and keeps the
old SEQ out of use until a late answer to it can no longer be taken for the answer to another
frame (see :class:`Session`).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

SYNC = 0xA5
HEADER_BYTES = 5  # SYNC, TYPE, SEQ, LEN_LO, LEN_HI
CRC_BYTES = 2
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
UART_BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop
DEFAULT_BAUD = 115200
SEQ_SPACE = 256  # SEQ is one byte
# the reply timeout: the worst case of the link's arithmetic x (1 + TIMEOUT_RATIO), plus a fixed
# allowance for the host's side (a USB serial adapter holds received bytes up to 16 ms; the
# driver polls every 10 ms)
TIMEOUT_RATIO = 0.5
HOST_LATENCY_S = 0.05


class FrameType(enum.IntEnum):
    IMAGE = 0x01
    RESULT = 0x81
    ERR_LENGTH = 0xE1
    ERR_CHECKSUM = 0xE2
    ERR_TIMEOUT = 0xE3
    ERR_TYPE = 0xE4

    @property
    def is_error(self) -> bool:
        return (self.value & 0xF0) == 0xE0


def crc16(data: bytes | Sequence[int], crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` continuing from ``crc`` (``hw/crc.sv`` with WIDTH 16, POLY
    0x1021, started at 0xFFFF)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def beat_bytes(width: int) -> int:
    """Bytes that carry one beat of ``width`` bits."""
    if width < 1:
        raise ValueError(f"a beat must be at least 1 bit wide, not {width}")
    return (width + 7) // 8


def beats_to_bytes(beats: Sequence[int], width: int) -> bytes:
    """Beats of ``width`` bits as link payload: each beat little-endian in ``ceil(width/8)`` bytes."""
    n = beat_bytes(width)
    out = bytearray()
    for i, beat in enumerate(beats):
        beat = int(beat)
        if beat < 0 or beat >> width:
            raise ValueError(f"beat {i} ({beat:#x}) does not fit in {width} bits")
        out += beat.to_bytes(n, "little")
    return bytes(out)


def bytes_to_beats(data: bytes, width: int) -> list[int]:
    """The inverse of :func:`beats_to_bytes` (bits above ``width`` are dropped)."""
    n = beat_bytes(width)
    if len(data) % n:
        raise ValueError(f"{len(data)} payload bytes are not a whole number of {n}-byte beats")
    mask = (1 << width) - 1
    return [int.from_bytes(data[i : i + n], "little") & mask for i in range(0, len(data), n)]


def words_to_beats(words: Sequence[int], words_per_beat: int) -> list[int]:
    """Beats from the 32-bit words of a packed stream (``qnnflow.sim.accel.pack_stream``: each
    beat ``words_per_beat`` words, least significant first)."""
    if len(words) % words_per_beat:
        raise ValueError(f"{len(words)} words are not a whole number of {words_per_beat}-word beats")
    return [sum(int(words[i + k]) << (32 * k) for k in range(words_per_beat))
            for i in range(0, len(words), words_per_beat)]


def beats_to_words(beats: Sequence[int], words_per_beat: int) -> list[int]:
    """The inverse of :func:`words_to_beats`."""
    return [(int(b) >> (32 * k)) & 0xFFFFFFFF for b in beats for k in range(words_per_beat)]


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame: header, payload and CRC."""
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"SEQ must fit in one byte, not {seq}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload holds at most 65535 bytes, not {len(payload)}")
    body = bytes([int(ftype), seq, len(payload) & 0xFF, len(payload) >> 8]) + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(CRC_BYTES, "big")


@dataclass(frozen=True)
class Frame:
    type: int  # a FrameType value, or another byte if the board sent something unexpected
    seq: int
    payload: bytes


class FrameParser:
    """Splits a received byte stream into frames. Bytes outside frames are skipped; a frame with a
    bad CRC is dropped (counted in ``bad_crc``) and the search for SYNC restarts right after its
    SYNC byte, so a corrupted frame cannot hide the ones after it."""

    def __init__(self, max_payload: int = 0xFFFF):
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.bad_crc = 0
        self.skipped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames: list[Frame] = []
        while True:
            start = self.buffer.find(SYNC)
            if start < 0:
                self.skipped += len(self.buffer)
                self.buffer.clear()
                return frames
            if start:
                self.skipped += start
                del self.buffer[:start]
            if len(self.buffer) < HEADER_BYTES:
                return frames
            length = self.buffer[3] | self.buffer[4] << 8
            if length > self.max_payload:
                self.bad_crc += 1
                del self.buffer[:1]
                continue
            end = HEADER_BYTES + length + CRC_BYTES
            if len(self.buffer) < end:
                return frames
            body = bytes(self.buffer[1 : end - CRC_BYTES])
            if crc16(self.buffer[1:end]) != 0:  # the CRC of the body followed by its CRC
                self.bad_crc += 1
                del self.buffer[:1]
                continue
            frames.append(Frame(body[0], body[1], body[4:]))
            del self.buffer[:end]


@dataclass(frozen=True)
class LinkFormat:
    """Widths of the accelerator's streams at the board top, as the link carries them."""

    in_width: int
    in_beats: int
    out_width: int
    out_beats: int

    @property
    def request_bytes(self) -> int:
        return self.in_beats * beat_bytes(self.in_width) + OVERHEAD_BYTES

    @property
    def response_bytes(self) -> int:
        return self.out_beats * beat_bytes(self.out_width) + OVERHEAD_BYTES

    def link_fps(self, baud: int = DEFAULT_BAUD) -> float:
        """Frames per second the UART allows (the slower direction; both run at once)."""
        return baud / (UART_BITS_PER_BYTE * max(self.request_bytes, self.response_bytes))

    def request_seconds(self, baud: int) -> float:
        """Time one request frame takes on the line at ``baud``."""
        return self.request_bytes * UART_BITS_PER_BYTE / baud

    def response_seconds(self, baud: int) -> float:
        """Time one response frame (a result, the longest answer) takes on the line at ``baud``."""
        return self.response_bytes * UART_BITS_PER_BYTE / baud


def reply_timeout(fmt: LinkFormat, baud: int, window: int, *, latency_s: float = 0.0, interval_s: float = 0.0,
                  host_latency_s: float = HOST_LATENCY_S) -> float:
    """Seconds after sending a frame by which its answer must have arrived, with ``window``
    frames in flight.

    The link is a pipeline of three stages, each in frame order: the request on the line, the
    accelerator (``latency_s`` from its first input beat to its last output beat, a new frame
    every ``interval_s``), and the response on the line. A frame sent behind ``window - 1``
    others is answered after its own time in the three stages plus ``window - 1`` times the
    slowest stage. That, times ``1 + TIMEOUT_RATIO``, plus ``host_latency_s`` for the host's
    own buffering."""
    if baud <= 0:
        raise ValueError(f"the baud rate must be positive, not {baud}")
    if window < 1:
        raise ValueError(f"window must be at least 1 frame, not {window}")
    if latency_s < 0 or interval_s < 0 or host_latency_s < 0:
        raise ValueError(
            f"latency_s, interval_s and host_latency_s must be >= 0, not {latency_s}, {interval_s}, {host_latency_s}"
        )
    req, resp = fmt.request_seconds(baud), fmt.response_seconds(baud)
    worst = req + latency_s + resp + (window - 1) * max(req, resp, interval_s)
    return worst * (1 + TIMEOUT_RATIO) + host_latency_s


@dataclass
class _InFlight:
    index: int
    sent_at: float


@dataclass
class _Retired:
    issued: int  # SEQs handed out before this one was retired
    at: float  # when it timed out


@dataclass
class Session:
    """The host side of one run over the link, without I/O: feed it the time and the bytes that
    arrived; it says what to send. Up to ``window`` frames are in flight; a frame whose answer is
    an error, or that gets no answer within :attr:`timeout` (seconds of the caller's clock, from
    :func:`reply_timeout`), is sent again with a new SEQ, at most ``retries`` times.

    The SEQ of a frame that timed out is retired: it is not handed out again until its late
    answer arrives (which is then dropped and counted in ``stale``) or until a full cycle of the
    sequence space (256 SEQs) has been handed out after it, at least 256 request times later
    (the digits CNN at 115,200 baud: 1.6 s, against a timeout of 0.09 s), so a late answer is not taken as the answer
    to a newer frame. Only when every
    SEQ is retired or in flight and nothing is in flight does the one retired longest ago come
    back, once it has been retired for a timeout more (a board that stopped answering)."""

    fmt: LinkFormat
    frames: Sequence[Sequence[int]]  # input beats of each frame
    baud: int = DEFAULT_BAUD
    window: int = 4
    retries: int = 3
    latency_s: float = 0.0  # the accelerator's, first input beat to last output beat
    interval_s: float = 0.0  # the accelerator's time per frame
    host_latency_s: float = HOST_LATENCY_S
    timeout: float = field(init=False)
    outputs: list[list[int] | None] = field(init=False)
    errors: Counter = field(init=False, default_factory=Counter)
    resent: int = field(init=False, default=0)
    unmatched: int = field(init=False, default=0)
    stale: int = field(init=False, default=0)  # late answers to timed-out frames, dropped
    max_round_trip: float = field(init=False, default=0.0)  # seconds, longest send-to-answer seen

    def __post_init__(self) -> None:
        if not 1 <= self.window <= SEQ_SPACE // 2:
            raise ValueError(f"window must be 1..{SEQ_SPACE // 2} frames (SEQ is one byte), not {self.window}")
        self.timeout = reply_timeout(self.fmt, self.baud, self.window, latency_s=self.latency_s,
                                     interval_s=self.interval_s, host_latency_s=self.host_latency_s)
        self.outputs = [None] * len(self.frames)
        self._todo = list(range(len(self.frames)))  # frames to send, next at the end
        self._todo.reverse()
        self._tries = [0] * len(self.frames)
        self._inflight: dict[int, _InFlight] = {}
        self._retired: dict[int, _Retired] = {}
        self._seq = 0  # where the search for the next free SEQ starts
        self._issued = 0  # SEQs handed out so far
        self.parser = FrameParser(max_payload=self.fmt.out_beats * beat_bytes(self.fmt.out_width))

    @property
    def done(self) -> bool:
        return not self._todo and not self._inflight

    @property
    def retired(self) -> frozenset[int]:
        """SEQs kept out of use because their frames timed out."""
        return frozenset(self._retired)

    def poll(self, now: float) -> bytes:
        """Bytes to send now: timed-out frames again, then new frames up to the window."""
        for seq, fl in list(self._inflight.items()):
            if now - fl.sent_at > self.timeout:
                del self._inflight[seq]
                self._retired[seq] = _Retired(self._issued, now)
                self.errors["no answer"] += 1
                self._retry(fl.index)
        out = bytearray()
        while self._todo and len(self._inflight) < self.window:
            seq = self._free_seq(now)
            if seq is None:
                break  # every SEQ is in flight or retired: wait
            index = self._todo.pop()
            self._inflight[seq] = _InFlight(index, now)
            self._issued += 1
            self._tries[index] += 1
            out += encode_frame(FrameType.IMAGE, seq, beats_to_bytes(self.frames[index], self.fmt.in_width))
        return bytes(out)

    def _free_seq(self, now: float) -> int | None:
        """The next SEQ (in cyclic order) neither in flight nor retired, or None."""
        for seq, r in list(self._retired.items()):
            if self._issued - r.issued >= SEQ_SPACE:
                del self._retired[seq]  # a full cycle of the sequence space since it timed out
        for k in range(SEQ_SPACE):
            seq = (self._seq + k) % SEQ_SPACE
            if seq not in self._inflight and seq not in self._retired:
                self._seq = (seq + 1) % SEQ_SPACE
                return seq
        if not self._inflight and self._retired:
            seq, r = min(self._retired.items(), key=lambda item: item[1].at)
            if now - r.at > self.timeout:
                del self._retired[seq]
                self._seq = (seq + 1) % SEQ_SPACE
                return seq
        return None

    def receive(self, data: bytes, now: float | None = None) -> list[Frame]:
        """Take bytes from the board; returns the frames they completed. With ``now`` (the
        clock of :meth:`poll`), the longest wait for an answer is kept in ``max_round_trip``."""
        frames = self.parser.feed(data)
        for frame in frames:
            if self._retired.pop(frame.seq, None) is not None:
                self.stale += 1  # the late answer to a frame that timed out: its SEQ is free again
                continue
            fl = self._inflight.pop(frame.seq, None)
            if fl is None:
                self.unmatched += 1  # an answer to a garbled header, or a SEQ not in use
                continue
            if now is not None:
                self.max_round_trip = max(self.max_round_trip, now - fl.sent_at)
            if frame.type == FrameType.RESULT:
                beats = bytes_to_beats(frame.payload, self.fmt.out_width)
                if len(beats) != self.fmt.out_beats:
                    self.errors["short result"] += 1
                    self._retry(fl.index)
                else:
                    self.outputs[fl.index] = beats
            else:
                try:
                    self.errors[FrameType(frame.type).name] += 1
                except ValueError:
                    self.errors[f"type {frame.type:#04x}"] += 1
                self._retry(fl.index)
        return frames

    def _retry(self, index: int) -> None:
        if self._tries[index] > self.retries:
            return  # given up: its output stays None
        self.resent += 1
        self._todo.append(index)
