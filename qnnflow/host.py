"""``qnnflow run``: a build's test inputs through a programmed board over a serial port.

The protocol (frames, CRC, the retransmitting :class:`~qnnflow.link.Session`) is
:mod:`qnnflow.link`; this module adds the serial port, the build folder's link format and timing,
and the comparison of the board's decisions with the software model's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qnnflow.link import DEFAULT_BAUD, LinkFormat, Session, beats_to_words, words_to_beats


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
    from qnnflow.flows.ir.reference import decisions
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

    got = decisions(board_out, tie_rtol=0.0)  # integers: the first largest, as the hardware selects
    want = decisions(sw_out[answered], tie_rtol=0.0)
    summary = {"frames": len(x), "answered": len(answered), "seconds": round(result.seconds, 3),
               "images_per_s": round(result.fps, 1), "agree_with_software": int((got == want).sum()),
               "errors": result.errors, "resent": result.resent, "stale_answers": result.stale,
               "reply_timeout_s": round(result.timeout, 4), "max_round_trip_s": round(result.max_round_trip, 4)}
    if y is not None:
        summary["board_accuracy"] = round(float((got == np.asarray(y)[answered]).mean()), 4) if answered else None
        summary["sw_accuracy"] = round(float((decisions(sw_out, tie_rtol=0.0) == np.asarray(y)).mean()), 4)
    return summary
