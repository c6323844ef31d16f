"""The UART host link: the frame format, and the host side of the conversation with a board.

This module is the one definition of the protocol. ``hw/frame_decoder.sv`` and
``hw/frame_encoder.sv`` implement the board side; the cocotb bench of the board top
(``qnnflow.sim.tb_board_top``) and the serial driver (:func:`run_serial`) both talk to it through
:class:`Session`, which holds no I/O of its own.

Frame, both directions::

    SYNC 0xA5 | TYPE | SEQ | LEN[7:0] | LEN[15:8] | LEN payload bytes | CRC-8 of TYPE..payload

CRC-8: polynomial 0x07, initial value 0, no reflection (CRC-8/SMBUS). The host sends ``IMAGE``
frames whose payload is the accelerator's input beats, each as ``ceil(width / 8)`` bytes, least
significant byte first. The board answers every frame header with one frame carrying the same
SEQ: ``RESULT`` (the output beats, packed the same way) or an error (``ERR_*``, no payload). A
frame the board abandons because bytes stopped coming gets ``ERR_TIMEOUT``. A corrupted SYNC
byte makes the board skip the frame without an answer; the session then resends it after its
timeout.
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
OVERHEAD_BYTES = HEADER_BYTES + 1  # plus the CRC byte
UART_BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop
DEFAULT_BAUD = 115200


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


def crc8(data: bytes | Sequence[int], crc: int = 0) -> int:
    """CRC-8/SMBUS of ``data`` continuing from ``crc`` (the same function as ``hw/crc8.sv``)."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
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


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame: header, payload and CRC."""
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"SEQ must fit in one byte, not {seq}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload holds at most 65535 bytes, not {len(payload)}")
    body = bytes([int(ftype), seq, len(payload) & 0xFF, len(payload) >> 8]) + bytes(payload)
    return bytes([SYNC]) + body + bytes([crc8(body)])


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
            end = HEADER_BYTES + length + 1
            if len(self.buffer) < end:
                return frames
            body = bytes(self.buffer[1 : end - 1])
            if crc8(body) != self.buffer[end - 1]:
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


@dataclass
class _InFlight:
    index: int
    sent_at: float


@dataclass
class Session:
    """The host side of one run over the link, without I/O: feed it the time and the bytes that
    arrived; it says what to send. Up to ``window`` frames are in flight; a frame whose answer is
    an error, or that gets no answer within ``timeout`` (seconds of the caller's clock), is sent
    again with a new SEQ, at most ``retries`` times."""

    fmt: LinkFormat
    frames: Sequence[Sequence[int]]  # input beats of each frame
    window: int = 4
    timeout: float = 1.0
    retries: int = 3
    outputs: list[list[int] | None] = field(init=False)
    errors: Counter = field(init=False, default_factory=Counter)
    resent: int = field(init=False, default=0)
    unmatched: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 128:
            raise ValueError(f"window must be 1..128 frames (SEQ is one byte), not {self.window}")
        self.outputs = [None] * len(self.frames)
        self._todo = list(range(len(self.frames)))  # frames to send, next at the end
        self._todo.reverse()
        self._tries = [0] * len(self.frames)
        self._inflight: dict[int, _InFlight] = {}
        self._seq = 0
        self.parser = FrameParser(max_payload=self.fmt.out_beats * beat_bytes(self.fmt.out_width))

    @property
    def done(self) -> bool:
        return not self._todo and not self._inflight

    def poll(self, now: float) -> bytes:
        """Bytes to send now: timed-out frames again, then new frames up to the window."""
        for seq, fl in list(self._inflight.items()):
            if now - fl.sent_at > self.timeout:
                del self._inflight[seq]
                self.errors["no answer"] += 1
                self._retry(fl.index)
        out = bytearray()
        while self._todo and len(self._inflight) < self.window:
            index = self._todo.pop()
            while self._seq in self._inflight:
                self._seq = (self._seq + 1) & 0xFF
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
            self._inflight[seq] = _InFlight(index, now)
            self._tries[index] += 1
            out += encode_frame(FrameType.IMAGE, seq, beats_to_bytes(self.frames[index], self.fmt.in_width))
        return bytes(out)

    def receive(self, data: bytes) -> list[Frame]:
        """Take bytes from the board; returns the frames they completed."""
        frames = self.parser.feed(data)
        for frame in frames:
            fl = self._inflight.pop(frame.seq, None)
            if fl is None:
                self.unmatched += 1  # an answer to a garbled header or to a frame already retried
                continue
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

    @property
    def fps(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else math.nan


def run_serial(port: str, fmt: LinkFormat, frames: Sequence[Sequence[int]], *, baud: int = DEFAULT_BAUD,
               window: int = 4, timeout: float = 1.0, progress: bool = True) -> RunResult:
    """Send every frame to a programmed board over ``port`` (pyserial) and collect the outputs."""
    import serial  # pyserial; imported here so the protocol itself needs nothing

    session = Session(fmt, frames, window=window, timeout=timeout)
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
            session.receive(link.read(max(1, link.in_waiting)))
            answered = sum(o is not None for o in session.outputs)
            if progress and answered - shown >= 100:
                shown = answered
                print(f"  {answered}/{len(frames)} frames", flush=True)
    seconds = time.monotonic() - start
    answered = sum(o is not None for o in session.outputs)
    return RunResult(len(frames), answered, seconds, session.outputs, dict(session.errors), session.resent)


def link_format_from_build(build_dir: Path | str) -> LinkFormat:
    """The link format of a build folder's accelerator (see :mod:`qnnflow.flows.implement`)."""
    from qnnflow.flows.implement import accelerator_design

    return accelerator_design(build_dir).link_format


def build_baud(build_dir: Path) -> int:
    """The UART rate a build's bitstream was made for (report.json), else :data:`DEFAULT_BAUD`."""
    import json

    report = Path(build_dir) / "report.json"
    if report.is_file():
        perf = json.loads(report.read_text()).get("performance") or {}
        if perf.get("uart_baud"):
            return int(perf["uart_baud"])
    return DEFAULT_BAUD


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
    words = pack_stream(hw_in, s_in).reshape(len(x), s_in.beats, s_in.words32).astype(np.uint64)
    frames = [[sum(int(w) << (32 * k) for k, w in enumerate(beat)) for beat in frame] for frame in words]
    fmt = LinkFormat(s_in.width, s_in.beats, s_out.width, s_out.beats)
    result = run_serial(port, fmt, frames, baud=baud)
    answered = [i for i, o in enumerate(result.outputs) if o is not None]
    out_words = np.array([[(b >> (32 * k)) & 0xFFFFFFFF for b in result.outputs[i] for k in range(s_out.words32)]
                          for i in answered], dtype=np.uint32).reshape(-1)
    hw_out = unpack_stream(out_words, len(answered), s_out).reshape(len(answered), *design.out_shape)
    board_out = host.finish(hw_out)

    def decisions(out: np.ndarray) -> np.ndarray:
        out = np.asarray(out).reshape(len(out), -1)
        return out[:, 0].astype(int) if out.shape[1] == 1 else out.argmax(axis=1)

    got = decisions(board_out)
    want = decisions(sw_out[answered])
    summary = {"frames": len(x), "answered": len(answered), "seconds": round(result.seconds, 3),
               "images_per_s": round(result.fps, 1), "agree_with_software": int((got == want).sum()),
               "errors": result.errors, "resent": result.resent}
    if y is not None:
        summary["board_accuracy"] = round(float((got == np.asarray(y)[answered]).mean()), 4) if answered else None
        summary["sw_accuracy"] = round(float((decisions(sw_out) == np.asarray(y)).mean()), 4)
    return summary
