"""Stitched-accelerator simulation: the codegen's ``rtl/`` in Verilator, bit-exact against the
dataflow graph's execution, over whole test sets.

- The host part of the graph (the input quantizer before the hardware, a logits rescale after it)
  runs in software (:class:`HostIO`); the hardware's input and output streams are packed and
  unpacked with :func:`qnnflow.flows.codegen.memfiles.encode` / ``decode`` (the one element layout).
- Batch mode: ``sim/harness/accel_main.cpp`` as the Verilator main, fed from files (fast; whole
  test sets), free-running or with random input idles and output backpressure
  (:func:`stall_traffic`; the harness counts the stalls that took effect). cocotb mode:
  ``sim/tb_accel.py`` with random input idles and output backpressure, every output beat compared
  as it arrives (slow; a few frames).
- Both report where a stopped stream stopped (which layer's valid / ready; :mod:`qnnflow.sim.stalls`)
  instead of hanging.
- Verilator builds are cached per design (a hash of the RTL, the harness and the flags) under
  ``<build>/sim/verilator/``, Verilator's runtime library once per user
  (:func:`qnnflow.sim.build_cache.user_cache`); make runs with at most two jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen.design import Design, StreamInfo
from qnnflow.flows.codegen.memfiles import decode, encode
from qnnflow.sim import build_cache
from qnnflow.sim.stalls import stall_message

from qnnflow import toolchain
from qnnflow.errors import FlowError

HARNESS = Path(__file__).resolve().parent / "harness" / "accel_main.cpp"
BUILD_JOBS = 2


# ---------------------------------------------------------------------------------------------
# stream <-> numpy
# ---------------------------------------------------------------------------------------------
def pack_stream(values: np.ndarray, s: StreamInfo) -> np.ndarray:
    """Frames of values (N, ...) in stream order -> uint32 words (N * beats * words32,), element i
    of a beat at bits ``[i*W +: W]``, each beat ``words32`` little-endian 32-bit words."""
    v = np.asarray(values)
    n = len(v)
    flat = np.round(v.reshape(n, -1)).astype(np.int64)
    if flat.shape[1] != s.beats * s.elems_per_beat:
        raise ValueError(
            f"{s.name}: a frame has {flat.shape[1]} values, the stream carries {s.beats * s.elems_per_beat}"
        )
    codes = encode(flat, s.elem_bits, signed=s.signed, bipolar=s.bipolar)
    bits = ((codes[..., None] >> np.arange(s.elem_bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(n * s.beats, s.width)
    pad = s.words32 * 32 - s.width
    if pad:
        bits = np.concatenate([bits, np.zeros((len(bits), pad), np.uint8)], axis=1)
    return np.packbits(bits, axis=1, bitorder="little").view("<u4").reshape(-1)


def unpack_stream(words: np.ndarray, frames: int, s: StreamInfo) -> np.ndarray:
    """The inverse of :func:`pack_stream`: words -> (frames, beats * elems_per_beat) int64."""
    w = np.asarray(words, dtype="<u4").reshape(frames * s.beats, s.words32)
    bits = np.unpackbits(w.view(np.uint8), axis=1, bitorder="little")[:, : s.width]
    bits = bits.reshape(frames * s.beats, s.elems_per_beat, s.elem_bits).astype(np.uint64)
    codes = (bits << np.arange(s.elem_bits, dtype=np.uint64)).sum(axis=2)
    return decode(codes, s.elem_bits, signed=s.signed, bipolar=s.bipolar).reshape(frames, -1)


# ---------------------------------------------------------------------------------------------
# the host part of the graph and the reference
# ---------------------------------------------------------------------------------------------
class HostIO:
    """Runs the dataflow graph in software: the hardware's input tensor, the expected hardware
    output (the golden model, every layer's numpy ``execute``), and the graph's output."""

    def __init__(self, model, design: Design):
        from qnnflow.flows.ir.execute import Executor

        self.model = model
        self.design = design
        self.executor = Executor(model)
        self.out_name = model.graph.output[0].name

    def run(self, x: np.ndarray, batch: int = 500, progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hardware input, expected hardware output, graph output) for every frame of ``x``."""
        hw_in, hw_out, sw_out = [], [], []
        for start in range(0, len(x), batch):
            ctx = self.executor.run(x[start : start + batch], keep=True)
            hw_in.append(ctx[self.design.in_tensor])
            hw_out.append(ctx[self.design.out_tensor])
            sw_out.append(ctx[self.out_name])
            if progress:
                progress(min(start + batch, len(x)), len(x))
        return np.concatenate(hw_in), np.concatenate(hw_out), np.concatenate(sw_out)

    def finish(self, hw_out: np.ndarray) -> np.ndarray:
        """The graph's output from the hardware's output (runs the host nodes after the hardware)."""
        after = _nodes_after(self.model, self.design.out_tensor)
        if not after:
            return hw_out
        from qnnflow.flows.ir.execute import Executor
        from qonnx.core.modelwrapper import ModelWrapper

        sub = _subgraph(self.model, self.design.out_tensor, after, self.design.out_shape)
        return np.asarray(Executor(ModelWrapper(sub)).run(hw_out.astype(np.float32)))


def _nodes_after(model, tensor: str) -> list:
    """Nodes that (transitively) consume ``tensor``: the host part after the hardware."""
    from qnnflow.flows.ir.graph import topo_nodes

    live, out = {tensor}, []
    for n in topo_nodes(model):
        if any(i in live for i in n.input):
            out.append(n)
            live.update(n.output)
    return out


def _subgraph(model, tensor: str, nodes: list, frame_shape: list[int]):
    """The host nodes after the hardware as a model of their own, ``tensor`` (one frame of
    ``frame_shape``; the graph's shape annotation may be missing) as its input."""
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info(tensor, TensorProto.FLOAT, [None, *frame_shape])
    names = {i for n in nodes for i in n.input}
    inits = [i for i in model.graph.initializer if i.name in names]
    graph = helper.make_graph(nodes, "host_after", [inp], list(model.graph.output), inits)
    sub = helper.make_model(graph, opset_imports=list(model.model.opset_import))
    return sub


# ---------------------------------------------------------------------------------------------
# Verilator build of the batch harness
# ---------------------------------------------------------------------------------------------
def _digest(design: Design, flags: list[str]) -> str:
    h = hashlib.sha256()
    rtl = design.path
    for name in [*design.files, "probe.sv", *sorted(p.name for p in rtl.glob("*.mem"))]:
        h.update(name.encode())
        h.update((rtl / name).read_bytes())
    h.update(HARNESS.read_bytes())
    h.update(json.dumps(flags).encode())
    return h.hexdigest()[:16]


BATCH_FLAGS = ["-O3", "--x-assign", "unique", "--x-initial", "unique", "-Wno-fatal"]
# make's arguments for a build that runs a few frames only (FIFO sizing's deep design): the model's
# C++ unoptimized, about a quarter less compile time (the runtime library, OPT_GLOBAL, is shared)
QUICK_MAKE = ("OPT_FAST=-O0", "OPT_SLOW=-O0")


@dataclass
class Executable:
    path: Path
    built: bool  # False when a cached build was reused
    seconds: float


def build_batch(design: Design, cache: Path, log=print, *, quick: bool = False) -> Executable:
    """Verilate the design with the batch harness, or reuse an up-to-date build under ``cache``.
    ``quick``: compile the model's C++ unoptimized (:data:`QUICK_MAKE`), for a run of a few frames."""
    tool = toolchain.require("verilator")["verilator"]
    make = (f"-j{BUILD_JOBS}", *(QUICK_MAKE if quick else ()))
    key = _digest(design, [*BATCH_FLAGS, *make])  # (the precompiled header changes no object's code)
    cache = Path(cache).resolve()  # verilator runs in the build folder: every path absolute
    obj = cache / key
    exe = obj / "accel_sim"
    if exe.is_file():
        return Executable(exe, False, 0.0)
    if obj.exists():
        shutil.rmtree(obj)
    obj.mkdir(parents=True)
    env = toolchain.tool_env(tool)
    cflags = env.get("CXXFLAGS", "")
    runtime = build_cache.runtime_dir(cache, verilator=str(tool.path), version=tool.version, cxx=cflags, batch=True)
    root = env.get("VERILATOR_ROOT")  # a system Verilator without it: no precompiled header
    pch = build_cache.precompiled_header(runtime, cflags, Path(root) / "include", ("verilated.h",)) if root else None
    rtl = design.path.resolve()
    cmd = tool.argv(
        "--cc", "--exe", "--build", "-j", str(BUILD_JOBS), *BATCH_FLAGS,
        "--top-module", design.probe_top, "--Mdir", str(obj), "-o", "accel_sim",
        "-CFLAGS", cflags + (f" -include {pch}" if pch else ""),
        *(a for m in (*make, *((build_cache.PCH_MAKE,) if pch else ())) for a in ("-MAKEFLAGS", m)),
        *[str(rtl / f) for f in design.files], str(rtl / "probe.sv"), str(HARNESS),
    )  # fmt: skip
    log(f"[sim] verilating {design.probe_top} ({len(design.layers)} layers) into {obj}")
    start = time.perf_counter()
    build_cache.reuse_runtime(runtime, obj, _RUNTIME_OBJECTS)
    log_path = obj / "build.log"
    with open(log_path, "w") as fh:
        proc = subprocess.run(cmd, cwd=obj, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode == 0:
        build_cache.keep_runtime(runtime, obj, _RUNTIME_OBJECTS)
    if proc.returncode != 0 or not exe.is_file():
        errors = [ln for ln in log_path.read_text(errors="replace").splitlines() if "%Error" in ln or "error:" in ln]
        raise FlowError("Verilator build of the accelerator failed: " + "; ".join(errors[:6]), log_path)
    log(f"[sim] built in {seconds:.1f} s")
    return Executable(exe, True, seconds)


# the runtime objects of a batch-harness build (kept per toolchain and compiler flags)
_RUNTIME_OBJECTS = ("verilated.o", "verilated_threads.o")


# ---------------------------------------------------------------------------------------------
# running the batch harness
# ---------------------------------------------------------------------------------------------
@dataclass
class BatchRun:
    """One run of the batch harness."""

    status: str  # "ok", "deadlock" or "timeout"
    cycles: int
    outputs: np.ndarray  # (frames, values) decoded hardware outputs
    timing: np.ndarray  # (frames, 4): first_in, last_in, first_out, last_out cycles
    fifo_fill: list[int]
    stream_beats: list[int]
    probe_valid: list[int]
    probe_ready: list[int]
    seconds: float
    frames_done: int = 0
    report: dict = field(default_factory=dict)

    def frame_period(self) -> float | None:
        """Steady-state cycles per frame: mean distance of the last output beats of frames 1..N-1
        (frame 0 includes the pipeline fill)."""
        ends = self.timing[: self.frames_done, 3]
        if len(ends) < 2:
            return None
        return float(ends[-1] - ends[0]) / (len(ends) - 1)

    def stall_counts(self) -> dict[str, int]:
        """The random stalls that took effect: cycles an input beat was held back by an idle, and
        cycles the output was offered but not taken."""
        rep = self.report
        return {"input_idle_cycles": int(rep["input_idles"]), "output_refused_cycles": int(rep["output_refused"])}

    def latency(self) -> int | None:
        """Cycles from frame 0's first input beat to its last output beat, inclusive."""
        if self.frames_done < 1:
            return None
        return int(self.timing[0, 3] - self.timing[0, 0] + 1)


def run_batch(
    exe: Path,
    design: Design,
    words_in: np.ndarray,
    frames: int,
    work: Path,
    *,
    period: int = 0,
    in_idle: float = 0.0,
    out_stall: float = 0.0,
    seed: int = 1,
    max_idle: int | None = None,
    max_cycles: int | None = None,
    progress: int = 0,
    check: bool = True,
) -> BatchRun:
    """Simulate ``frames`` frames (packed input words) with the batch harness; run in ``rtl/``.

    With ``check``, a deadlock or timeout raises FlowError with :func:`stall_message`."""
    work, exe = Path(work).resolve(), Path(exe).resolve()  # the harness runs in rtl/
    work.mkdir(parents=True, exist_ok=True)
    inp, out = design.input, design.output
    max_idle, max_cycles = _batch_limits(design, frames, max_idle, max_cycles)
    (work / "in.bin").write_bytes(np.ascontiguousarray(words_in, dtype="<u4").tobytes())
    pairs = ",".join(f"{f.in_stream}:{f.out_stream}" for f in design.fifos)
    args = {
        "in": work / "in.bin", "out": work / "out.bin", "timing": work / "timing.bin", "report": work / "report.txt",
        "frames": frames, "in-beats": inp.beats, "in-words": inp.words32, "out-beats": out.beats,
        "out-words": out.words32, "streams": len(design.streams), "fifo-pairs": pairs, "period": period,
        "in-idle": in_idle, "out-stall": out_stall, "seed": seed, "max-idle": max_idle, "max-cycles": max_cycles,
        "progress": progress,
    }  # fmt: skip
    argv = [str(exe)]
    for k, v in args.items():
        argv += [f"--{k}", str(v)]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=design.path, capture_output=progress == 0, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise FlowError(f"the accelerator simulation failed (exit {proc.returncode}): {proc.stderr or ''}".strip())
    run = _read_batch_run(work, out, frames, seconds)
    if check and run.status != "ok":
        msg = stall_message(
            design, run.probe_valid, run.probe_ready, run.stream_beats, run.status, run.cycles,
            int(run.report.get("last_move", 0)),
        )  # fmt: skip
        raise FlowError(f"{msg}\n  ({run.frames_done} of {frames} frames completed; work folder {work})")
    return run


def _batch_limits(design: Design, frames: int, max_idle: int | None, max_cycles: int | None) -> tuple[int, int]:
    """The harness's stop rules where not given, from the slowest layer's estimated cycles per frame:
    a deadlock after max(20000, 4 x that) cycles without a handshake; a cycle limit of 20 x that
    (or x the stream beats, if more) for each frame and two more, plus 100000."""
    inp, out = design.input, design.output
    est = max((lay["exp_cycles"] for lay in design.layers), default=1)
    if max_idle is None:
        max_idle = max(20000, 4 * est)
    if max_cycles is None:
        max_cycles = (frames + 2) * 20 * max(est, inp.beats, out.beats) + 100000
    return max_idle, max_cycles


def _read_batch_run(work: Path, out: StreamInfo, frames: int, seconds: float) -> BatchRun:
    """The harness's results in ``work`` (report.txt, out.bin, timing.bin) as a :class:`BatchRun`."""
    rep = {}
    for line in (work / "report.txt").read_text().splitlines():
        k, _, v = line.partition("=")
        rep[k.strip()] = v.strip()
    ints = lambda key: [int(t) for t in rep.get(key, "").split()]  # noqa: E731
    outs = np.frombuffer((work / "out.bin").read_bytes(), dtype="<u4")
    timing = np.frombuffer((work / "timing.bin").read_bytes(), dtype="<i8").reshape(frames, 4)
    done = int(rep["out_beats"]) // out.beats
    return BatchRun(
        status=rep["status"], cycles=int(rep["cycles"]), outputs=unpack_stream(outs, frames, out), timing=timing,
        fifo_fill=ints("fifo_fill_max"), stream_beats=ints("stream_beats"), probe_valid=ints("probe_valid"),
        probe_ready=ints("probe_ready"), seconds=seconds, frames_done=done, report=rep,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# cocotb mode
# ---------------------------------------------------------------------------------------------
COCOTB_IDLE = 0.3  # probability that the source holds tvalid low in a cycle
COCOTB_READY = 0.6  # probability that the sink raises tready in a cycle


def stall_traffic(seed: int) -> dict:
    """The batch harness's random stalls (keywords of :func:`run_batch`), as in cocotb mode: an
    input idle in 30 % of the cycles, the output not taken in 40 %, drawn from ``seed``."""
    return {"in_idle": COCOTB_IDLE, "out_stall": round(1 - COCOTB_READY, 6), "seed": seed}


def run_cocotb(
    design: Design,
    hw_in: np.ndarray,
    want: np.ndarray,
    work: Path,
    *,
    seed: int,
    idle_prob: float = COCOTB_IDLE,
    ready_prob: float = COCOTB_READY,
    max_idle: int | None = None,
    log=print,
) -> dict:
    """The whole accelerator under cocotb (``sim/tb_accel.py``) with random input idles and output
    backpressure; every output beat is compared with the dataflow graph's as it arrives.

    Returns outputs (frames, values), cycles, seconds (the simulation with its start-up, no
    build), loop_seconds / loop_cycles (the clocked loop alone), build_seconds (0.0 when the cached
    build was up to date), mismatching beats, traffic. A stopped stream (no
    handshake for ``max_idle`` cycles) or a run past the cycle limit ends the bench with
    :func:`stall_message`, raised here as FlowError."""
    from qnnflow.sim import runner

    frames = len(hw_in)
    config = _cocotb_config(design, hw_in, want, idle_prob, ready_prob, max_idle)
    mems = {p.name: p.read_text() for p in design.path.glob("*.mem")}
    sources = [design.path / f for f in design.files] + [design.path / "probe.sv"]
    cache = (Path(work) / "build").resolve()
    build_seconds = _build_cocotb(design, cache, sources)
    log(f"[sim] cocotb: {frames} frames, random input idles ({idle_prob}) and backpressure (ready {ready_prob})")
    start = time.perf_counter()
    run = runner.run_bench(
        design.probe_top, {}, seed=seed, config=config, files=mems, cache_dir=cache,
        bench="qnnflow.sim.tb_accel", extra_sources=sources, check=False, optimize=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    rep = run.report
    if "stall" in rep:
        raise FlowError(rep["stall"], run.log)
    if run.tests == 0 or run.failures or "outputs" not in rep:
        raise FlowError(f"the cocotb bench of the accelerator failed (seed {seed}): {_bench_failure(run.log)}", run.log)
    got_words = np.array([_words(int(b), design.output.words32) for b in rep["outputs"]], dtype="<u4")
    return {
        "outputs": unpack_stream(got_words.reshape(-1), frames, design.output),
        "cycles": int(rep["cycles"]),
        "seconds": seconds,
        "loop_seconds": float(rep["loop_seconds"]),  # the clocked loop alone, without simulator start-up
        "loop_cycles": int(rep["loop_cycles"]),
        "build_seconds": build_seconds,
        "mismatching_beats": int(rep["mismatching_beats"]),
        "traffic": f"input idles {idle_prob}, output ready {ready_prob}",
    }


def _beats(values: np.ndarray, s: StreamInfo) -> list[int]:
    """Frames of values as the beats of stream ``s``, each one integer (word k at bits ``[32k +: 32]``)."""
    words = pack_stream(values, s).reshape(-1, s.words32)
    return [sum(int(w) << (32 * k) for k, w in enumerate(row)) for row in words]


def _words(beat: int, words32: int) -> list[int]:
    """The inverse of :func:`_beats` for one beat: its ``words32`` 32-bit words, least significant first."""
    return [(beat >> (32 * k)) & 0xFFFFFFFF for k in range(words32)]


def _cocotb_config(
    design: Design, hw_in: np.ndarray, want: np.ndarray, idle_prob: float, ready_prob: float, max_idle: int | None
) -> dict:
    """The settings of ``sim/tb_accel.py``: the input and expected output beats, the traffic, and
    the stop rules where not given, from the estimated cycles per frame (at least the stream beats):
    a deadlock after max(20000, 8 x that) cycles without a handshake; a cycle limit that allows for
    the sink's backpressure."""
    frames = len(hw_in)
    inp, out = design.input, design.output
    est = max(estimated_ii(design), inp.beats, out.beats)
    if max_idle is None:
        max_idle = max(20000, 8 * est)
    # with tready high only ready_prob of the cycles, a frame takes about est / ready_prob cycles
    max_cycles = int((frames + 2) * 20 * est / max(ready_prob, 0.05)) + 100000
    return {
        "rtl_dir": str(design.path), "in_beats": _beats(hw_in, inp), "expect": _beats(want.reshape(frames, -1), out),
        "idle_prob": idle_prob, "ready_prob": ready_prob, "max_idle": max_idle, "max_cycles": max_cycles,
    }  # fmt: skip


def _build_cocotb(design: Design, cache: Path, sources: list[Path]) -> float:
    """Build the cocotb bench of the probe top under ``cache``; the seconds it took, 0.0 when the
    cached build was up to date."""
    from qnnflow.sim import runner

    stamp = runner.build_dir_for(design.probe_top, {}, waves=False, cache_dir=cache) / "build.stamp"
    before = stamp.stat().st_mtime_ns if stamp.is_file() else None
    start = time.perf_counter()
    # optimized: a whole accelerator's simulated cycles cost more than its build
    runner.build(design.probe_top, {}, cache_dir=cache, extra_sources=sources, optimize=True)
    build_seconds = time.perf_counter() - start
    built = not stamp.is_file() or stamp.stat().st_mtime_ns != before  # else the cached build was up to date
    return build_seconds if built else 0.0


def _bench_failure(log: Path) -> str:
    """The assertion a failed cocotb test reported, from its log."""
    if not Path(log).is_file():
        return "no simulation log"
    lines = Path(log).read_text(errors="replace").splitlines()
    hits = [ln.strip() for ln in lines if "AssertionError" in ln or "FAIL" in ln]
    return hits[0] if hits else (lines[-1].strip() if lines else "empty simulation log")


def estimated_ii(design: Design) -> int:
    return max((lay["exp_cycles"] for lay in design.layers), default=0)


def cpu_count() -> int:
    return os.cpu_count() or 1
