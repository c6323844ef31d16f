"""The UART host link: the frame format, and the host side of the conversation with a board.

This module is the one definition of the protocol. ``hw/frame_decoder.sv`` and
``hw/frame_encoder.sv`` implement the board side; the cocotb bench of the board top
(``qnnflow.sim.tb_board_top``) and the serial driver (:func:`run_serial`) both talk to it through
:class:`Session`, which holds no I/O of its own.

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
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class RunResult:
    frames: int
    answered: int
    seconds: float
    outputs: list[list[int] | None]
    errors: dict[str, int]
    resent: int
    stale: int = 0  # late answers to timed-out frames, dropped
    timeout: float = math.nan  # the reply timeout the session used, seconds
    max_round_trip: float = math.nan  # the longest send-to-answer time seen, seconds

    @property
    def fps(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else math.nan


def run_serial(port: str, fmt: LinkFormat, frames: Sequence[Sequence[int]], *, baud: int = DEFAULT_BAUD,
               window: int = 4, latency_s: float = 0.0, interval_s: float = 0.0,
               progress: bool = True) -> RunResult:
    """Send every frame to a programmed board over ``port`` (pyserial) and collect the outputs.
    ``latency_s`` and ``interval_s`` (the accelerator's latency and time per frame) enter the
    reply timeout (:func:`reply_timeout`)."""
    import serial  # pyserial; imported here so the protocol itself needs nothing

    session = Session(fmt, frames, baud=baud, window=window, latency_s=latency_s, interval_s=interval_s)
    try:
        link = serial.Serial(port, baudrate=baud, timeout=0.01)
    except serial.SerialException as err:
        raise ValueError(f"cannot open serial port {port}: {err}") from None
    start = time.monotonic()
    shown = 0
    with link:
        link.reset_input_buffer()
        while not session.done:
            data = session.poll(time.monotonic())
            if data:
                link.write(data)
            session.receive(link.read(max(1, link.in_waiting)), time.monotonic())
            answered = sum(o is not None for o in session.outputs)
            if progress and answered - shown >= 100:
                shown = answered
                print(f"  {answered}/{len(frames)} frames", flush=True)
    seconds = time.monotonic() - start
    answered = sum(o is not None for o in session.outputs)
    return RunResult(len(frames), answered, seconds, session.outputs, dict(session.errors), session.resent,
                     session.stale, session.timeout, session.max_round_trip)


def link_format_from_build(build_dir: Path | str) -> LinkFormat:
    """The link format of a build folder's accelerator (see :mod:`qnnflow.flows.implement`)."""
    from qnnflow.flows.implement import accelerator_design

    return accelerator_design(build_dir).link_format


def _build_performance(build_dir: Path) -> dict:
    import json

    report = Path(build_dir) / "report.json"
    return (json.loads(report.read_text()).get("performance") or {}) if report.is_file() else {}


def build_baud(build_dir: Path) -> int:
    """The UART rate a build's bitstream was made for (report.json), else :data:`DEFAULT_BAUD`."""
    perf = _build_performance(build_dir)
    return int(perf["uart_baud"]) if perf.get("uart_baud") else DEFAULT_BAUD


def build_accelerator_timing(build_dir: Path) -> tuple[float, float]:
    """The accelerator's latency and time per frame in seconds at the bitstream's clock
    (report.json); 0 for what the report does not give (the UART times dominate anyway)."""
    perf = _build_performance(build_dir)
    latency = float(perf.get("latency_us_at_clock") or 0.0) * 1e-6
    fps = float(perf.get("fps_at_clock") or 0.0)
    return latency, (1.0 / fps if fps > 0 else 0.0)


def run_board(build_dir: Path | str, port: str, *, inputs: Path | str | None = None,
              labels: Path | str | None = None, baud: int | None = None, limit: int | None = None) -> dict:
    """``qnnflow run``: the build's test inputs through a programmed board; accuracy and frames/s.

    ``baud``: the link's rate; by default the one the bitstream was built for (``report.json``),
    else :data:`DEFAULT_BAUD`.

    The host part of the graph (the input quantizer, a logits rescale) runs here, as in
    simulation (:class:`qnnflow.sim.accel.HostIO`); the board computes the rest."""
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper

    from qnnflow.flows.codegen import load_design
    from qnnflow.sim.accel import HostIO, pack_stream, unpack_stream

    build_dir = Path(build_dir)
    if baud is None:
        baud = build_baud(build_dir)
    design = load_design(build_dir / "rtl")
    x = np.load(inputs or build_dir / "test_inputs.npy")
    y = np.load(labels) if labels else (np.load(build_dir / "test_labels.npy")
                                        if (build_dir / "test_labels.npy").is_file() else None)
    if limit:
        x = x[:limit]
        y = y[:limit] if y is not None else None
    host = HostIO(ModelWrapper(str(build_dir / "dataflow.onnx")), design)
    hw_in, _, sw_out = host.run(x)
    s_in, s_out = design.input, design.output
    words = pack_stream(hw_in, s_in).reshape(len(x), -1)
    frames = [words_to_beats(frame, s_in.words32) for frame in words]
    fmt = LinkFormat(s_in.width, s_in.beats, s_out.width, s_out.beats)
    latency_s, interval_s = build_accelerator_timing(build_dir)
    result = run_serial(port, fmt, frames, baud=baud, latency_s=latency_s, interval_s=interval_s)
    answered = [i for i, o in enumerate(result.outputs) if o is not None]
    out_words = np.array([beats_to_words(result.outputs[i], s_out.words32) for i in answered],
                         dtype=np.uint32).reshape(-1)
    hw_out = unpack_stream(out_words, len(answered), s_out).reshape(len(answered), *design.out_shape)
    board_out = host.finish(hw_out)

    def decisions(out: np.ndarray) -> np.ndarray:
        out = np.asarray(out).reshape(len(out), -1)
        return out[:, 0].astype(int) if out.shape[1] == 1 else out.argmax(axis=1)

    got = decisions(board_out)
    want = decisions(sw_out[answered])
    summary = {"frames": len(x), "answered": len(answered), "seconds": round(result.seconds, 3),
               "images_per_s": round(result.fps, 1), "agree_with_software": int((got == want).sum()),
               "errors": result.errors, "resent": result.resent, "stale_answers": result.stale,
               "reply_timeout_s": round(result.timeout, 4), "max_round_trip_s": round(result.max_round_trip, 4)}
    if y is not None:
        summary["board_accuracy"] = round(float((got == np.asarray(y)[answered]).mean()), 4) if answered else None
        summary["sw_accuracy"] = round(float((decisions(sw_out) == np.asarray(y)).mean()), 4)
    return summary
