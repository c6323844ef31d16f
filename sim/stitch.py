"""``qnnflow sim``: code generation (with FIFO sizing) and stitched simulation of a build folder.

:func:`prepare_rtl` writes ``<build>/rtl/`` unless it is up to date with ``dataflow.onnx`` and the
RTL library; :func:`simulate` runs the accelerator on a test set and writes ``<build>/sim/``:
``results.json`` (frames, mismatches, hw_accuracy, sw_accuracy, cycles_per_frame_measured,
cycles_per_frame_estimated, latency_cycles, ...) and ``outputs.npy`` (the hardware's output per
frame in the model's output form: class index or logits).

Mismatches are frames whose hardware output differs in any value from the dataflow graph's
execution at the hardware boundary (integers, compared exactly); they must be 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qnnflow.flows import codegen
from qnnflow.flows.codegen import Design, load_design
from qnnflow.flows.ir.inputs import check_on_grid, load_npy, range_warning
from qnnflow.flows.ir.reference import decisions
from qnnflow.sim import fifo_sizing
from qnnflow.sim.accel import HostIO, build_batch, estimated_ii, pack_stream, run_batch, run_cocotb, stall_traffic

from qnnflow import stamps
from qnnflow.config import SimMode

STAMP = stamps.RTL_STAMP
COCOTB_FRAMES = 8  # default frames in cocotb mode (Python drives every cycle)


def _source_digest(dataflow: Path) -> str:
    """What rtl/ is made from: the dataflow graph and every source file of the layers that code
    generation, FIFO sizing and the harness run (the package's base, flows/, sim/ and hw/)."""
    return stamps.digest_bytes(
        (stamps.digest_path(dataflow) + stamps.source_digest("qnnflow", "flows", "sim", "hw")).encode()
    )


def load_model(build: Path):
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(build) / "dataflow.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: compile the model first (qnnflow compile MODEL --out {build})")
    return ModelWrapper(str(path))


def prepare_rtl(build: Path | str, x: np.ndarray | None = None, log=print) -> Design:
    """``<build>/rtl/`` for ``<build>/dataflow.onnx``: generated and FIFO-sized unless up to date.

    ``x`` are model inputs for the sizing run (default: the build's test inputs, else zeros)."""
    build = Path(build)
    model = load_model(build)
    rtl = build / "rtl"
    digest = _source_digest(build / "dataflow.onnx")
    stamp = rtl / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest:
        return load_design(rtl)
    log(f"[sim] code generation: {build / 'dataflow.onnx'} -> {rtl}")
    stamps.invalidate(build, "codegen")  # old RTL, and every result made from it, is stale now
    design = codegen.generate(model, rtl)
    if x is None:
        x = _default_inputs(build, model)
    io = HostIO(model, design)
    hw_in, _, _ = io.run(x[: fifo_sizing.SIZING_FRAMES])
    design, _record = fifo_sizing.size_fifos(
        model, rtl, build / "sim" / "fifo_sizing", hw_in, build / "sim" / "verilator", log=log
    )
    (rtl / STAMP).write_text(json.dumps({"digest": digest}) + "\n")
    return design


def _default_inputs(build: Path, model) -> np.ndarray:
    path = build / "test_inputs.npy"
    if path.is_file():
        return np.load(path)
    shape = [int(v) for v in model.get_tensor_shape(model.graph.input[0].name)[1:]]
    return np.zeros([fifo_sizing.SIZING_FRAMES, *shape], dtype=np.float32)


def _estimates(build: Path, design: Design) -> tuple[int, int | None]:
    path = build / "estimates.json"
    if path.is_file():
        est = json.loads(path.read_text())
        return int(est["ii_cycles"]), int(est.get("latency_cycles") or 0) or None
    return estimated_ii(design), None


def simulate(
    build: Path | str,
    inputs: Path | str | np.ndarray | None = None,
    labels: Path | str | np.ndarray | None = None,
    mode: SimMode = SimMode.BATCH,
    frames: int | None = None,
    seed: int = 1,
    log=print,
    results_dir: Path | str | None = None,
    reuse: bool = False,
    stalls: bool = False,
) -> dict:
    """Simulate the build's accelerator on a test set; write ``results.json`` and ``outputs.npy``.

    ``inputs`` / ``labels``: arrays or .npy files (default: the build's test_inputs.npy and, only
    with those inputs, its test_labels.npy). ``frames`` limits the frames simulated (default: all in batch mode,
    :data:`COCOTB_FRAMES` in cocotb mode).

    Only the build's own record -- batch mode on all of the build's test inputs -- goes to ``sim/``
    (and counts for the report); any other run (cocotb mode, other inputs, fewer frames) goes to its
    own folder ``sim/runs/<mode>[-inputs-<digest>][-<N>frames]/``, or to ``results_dir`` when given.
    The folder used is ``results["results_dir"]``. ``reuse``: for the record run, return the
    recorded results at once when dataflow graph, RTL, inputs and simulator code are unchanged.
    ``stalls``: batch mode with random input idles and output backpressure drawn from ``seed``
    (:func:`qnnflow.sim.accel.stall_traffic`; results["stalls"]), never the build's record."""
    build = Path(build)
    model = load_model(build)
    x, y, frames = _simulation_inputs(build, inputs, labels, mode, frames, log)
    n_inputs = len(x)
    record = inputs is None and results_dir is None and mode is SimMode.BATCH and frames == n_inputs and not stalls
    if record and reuse and (recorded := _recorded_results(build, log)) is not None:
        return recorded
    x, y = x[:frames], _first_labels(y, frames)
    design = prepare_rtl(build, x, log=log)
    io = HostIO(model, design)
    hw_in, want, sw_out = _reference(io, x, log)
    out_dir = _results_folder(build, results_dir, record, mode, inputs, x, n_inputs, seed if stalls else None)
    if record:
        stamps.invalidate(build, "sim")
        provenance = stamps.sim_inputs(build)  # rtl/ may have just been generated
    out_dir.mkdir(parents=True, exist_ok=True)
    est_ii, est_latency = _estimates(build, design)
    run = _simulate_hardware(mode, design, hw_in, want, build / "sim" / "verilator", out_dir, seed, stalls, log)
    hw_graph_out = io.finish(run.outputs.reshape(frames, *design.out_shape).astype(np.float32))
    results = {
        "mode": mode.value,
        "frames": frames,
        **_agreement(run.outputs, want, decisions(hw_graph_out), decisions(sw_out), y),
        **_speed(run, frames, est_ii, est_latency),
        "fifo_depths": {f.name: f.depth for f in design.fifos},
        "fifo_sizing": fifo_sizing.load_record(design.path),  # with the fallback, if one was taken
        **run.extra,
        "results_dir": str(out_dir),
    }
    _write_results(out_dir, hw_graph_out, results)
    if record:
        stamps.write_stamp(build, "sim", provenance)
    log(summary(results))
    return results


def _simulation_inputs(
    build: Path, inputs, labels, mode: SimMode, frames: int | None, log
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The inputs and labels given (else the build's), checked, and the number of frames to simulate:
    ``frames`` if given (1..inputs), else all in batch mode and :data:`COCOTB_FRAMES` in cocotb mode."""
    x = _load(inputs, build / "test_inputs.npy", "inputs")
    y = _load(labels, build / "test_labels.npy" if inputs is None else None, "labels", required=False)
    if frames is None:
        frames = len(x) if mode is SimMode.BATCH else min(len(x), COCOTB_FRAMES)
    if frames < 1 or frames > len(x):
        raise ValueError(f"frames must be in 1..{len(x)} (the inputs), not {frames}")
    if inputs is not None:
        _check_user_inputs(build, x, inputs, log)
    return x, y, frames


def _first_labels(y: np.ndarray | None, frames: int) -> np.ndarray | None:
    """The labels of the first ``frames`` inputs (None without labels)."""
    if y is None:
        return None
    if len(y) < frames:
        raise ValueError(f"labels: {len(y)} labels for {frames} inputs")
    return np.asarray(y)[:frames]


def _recorded_results(build: Path, log) -> dict | None:
    """The build's recorded results when nothing they were made from has changed, else None."""
    path = build / "sim" / "results.json"
    if stamps.is_current(build, "sim", stamps.sim_inputs(build)) and path.is_file():
        log(f"[sim] {build}: simulation results are up to date; reusing them")
        return json.loads(path.read_text())
    return None


def _reference(io: HostIO, x: np.ndarray, log) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dataflow graph on the frames ``x``: the hardware's input, its expected output (integers,
    one row a frame) and the graph's output."""
    log(f"[sim] reference: executing the dataflow graph on {len(x)} frames")
    hw_in, want, sw_out = io.run(x)
    return hw_in, np.round(want).astype(np.int64).reshape(len(x), -1), sw_out


@dataclass(frozen=True)
class _HardwareRun:
    """What one simulation of the accelerator gave, in either mode."""

    outputs: np.ndarray  # (frames, values): the hardware's output stream, decoded
    cycles: int
    seconds: float
    period: float | None  # measured cycles per frame (batch mode only)
    latency: int | None  # cycles of frame 0 (batch mode only)
    extra: dict  # the mode's own fields of results.json


def _simulate_hardware(
    mode: SimMode, design: Design, hw_in, want, cache: Path, out_dir: Path, seed: int, stalls: bool, log
) -> _HardwareRun:
    """The accelerator on the hardware inputs ``hw_in``, in ``mode``."""
    if mode is SimMode.BATCH:
        return _simulate_batch(design, hw_in, cache, out_dir, seed, stalls, log)
    return _simulate_cocotb(design, hw_in, want, out_dir, seed, log)


def _simulate_batch(
    design: Design, hw_in: np.ndarray, cache: Path, out_dir: Path, seed: int, stalls: bool, log
) -> _HardwareRun:
    """Batch mode: the Verilator harness (built under ``cache``) on every frame, free-running or
    with the random stalls of ``seed``."""
    frames = len(hw_in)
    exe = build_batch(design, cache, log=log)
    traffic = stall_traffic(seed) if stalls else {}
    log(f"[sim] batch: {frames} frames in Verilator" + (f", random stalls {traffic}" if stalls else ""))
    run = run_batch(
        exe.path, design, pack_stream(hw_in, design.input), frames, out_dir / "batch",
        progress=max(1, frames // 10) if frames >= 50 else 0, **traffic,
    )  # fmt: skip
    extra = {"verilator_build_seconds": round(exe.seconds, 2), "verilator_build_cached": not exe.built,
             "stalls": {**traffic, **run.stall_counts()} if stalls else None}  # fmt: skip
    return _HardwareRun(run.outputs, run.cycles, run.seconds, run.frame_period(), run.latency(), extra)


def _simulate_cocotb(
    design: Design, hw_in: np.ndarray, want: np.ndarray, out_dir: Path, seed: int, log
) -> _HardwareRun:
    """cocotb mode: the bench with random idles and backpressure, every output beat checked."""
    res = run_cocotb(design, hw_in, want, out_dir / "cocotb", seed=seed, log=log)
    extra = {
        "traffic": res["traffic"], "seed": seed, "cocotb_mismatching_beats": res["mismatching_beats"],
        "loop_cycles_per_second": round(res["loop_cycles"] / res["loop_seconds"]) if res["loop_seconds"] else None,
        "verilator_build_seconds": round(res["build_seconds"], 2),
        "verilator_build_cached": not res["build_seconds"],
    }  # fmt: skip
    return _HardwareRun(res["outputs"], res["cycles"], res["seconds"], None, None, extra)


def _agreement(got: np.ndarray, want: np.ndarray, hw_dec: np.ndarray, sw_dec: np.ndarray, y) -> dict:
    """The hardware's outputs against the dataflow graph's (exact, per frame), its decisions
    against the graph's, and both accuracies on the labels ``y`` (None without labels)."""
    bad = np.flatnonzero((got != want).any(axis=1))
    return {
        "mismatches": int(len(bad)),
        "first_mismatches": [int(i) for i in bad[:10]],
        "decision_mismatches": int((hw_dec != sw_dec).sum()),
        "hw_accuracy": float((hw_dec == y).mean()) if y is not None else None,
        "sw_accuracy": float((sw_dec == y).mean()) if y is not None else None,
    }


def _speed(run: _HardwareRun, frames: int, est_ii: int, est_latency: int | None) -> dict:
    """Cycles per frame and latency, measured beside estimated, and the simulation's rate."""
    period, cycles, seconds = run.period, run.cycles, run.seconds
    return {
        "cycles_per_frame_measured": period,
        "cycles_per_frame_estimated": est_ii,
        "ii_ratio": round(period / est_ii, 4) if period and est_ii else None,
        "latency_cycles": run.latency,
        "latency_cycles_estimated": est_latency,
        "cycles_simulated": int(cycles),
        "sim_seconds": round(seconds, 3),
        "cycles_per_second": round(cycles / seconds) if seconds else None,
        "frames_per_second": round(frames / seconds, 2) if seconds else None,
    }


def _check_user_inputs(build: Path, x: np.ndarray, inputs, log) -> None:
    """Inputs the user gives: the source model's input shape (a clear error), its grid (a warning)."""
    from qnnflow.flows.compile.importer import load_model as load_source

    try:
        src = load_source(source_model(build))
    except FileNotFoundError:
        return  # no source model to compare with: the dataflow graph's own checks apply
    shape = tuple(src.get_tensor_shape(src.graph.input[0].name)[1:])
    if x.ndim == 0 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"inputs have shape {x.shape}; the model expects (N, {', '.join(map(str, shape))})")
    source = str(inputs) if isinstance(inputs, str | Path) else "inputs"
    check_on_grid(np.asarray(x, dtype=np.float32), src, source)
    warning = range_warning(np.asarray(x, dtype=np.float32), src, source)
    if warning:
        log(f"warning: {warning}")


def _results_folder(
    build: Path,
    results_dir: Path | str | None,
    record: bool,
    mode: SimMode,
    inputs,
    x: np.ndarray,
    n_inputs: int,
    stalls_seed: int | None,
) -> Path:
    """Where a run's results go: ``results_dir`` if given, ``sim/`` for the build's record, else
    ``sim/runs/<label>/``. ``x``: the frames simulated, the first of ``n_inputs`` given;
    ``stalls_seed``: the seed of random stalls (None without)."""
    if results_dir is not None:
        return Path(results_dir)
    if record:
        return build / "sim"
    label = mode.value
    if inputs is not None:
        label += f"-inputs-{stamps.digest_array(np.asarray(x))[:8]}"
    if len(x) != n_inputs:
        label += f"-{len(x)}frames"
    if stalls_seed is not None:
        label += f"-stalls-seed{stalls_seed}"
    return build / "sim" / "runs" / label


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        write(f)
    tmp.replace(path)


def _write_json(path: Path, data: dict) -> None:
    _write_atomic(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))


def _write_results(out_dir: Path, outputs: np.ndarray, results: dict) -> None:
    """``outputs.npy`` and ``results.json`` into ``out_dir``, results.json last, each file complete
    or absent: an interrupted run leaves no record."""
    _write_atomic(out_dir / "outputs.npy", lambda f: np.save(f, outputs))
    _write_json(out_dir / "results.json", results)


BOUNDARY_PAIRS = 100  # default probe pairs of the boundary check: 200 inputs on the boundary


def source_model(build: Path) -> Path:
    """The model the build was compiled from (verification.json), else ``model.onnx``."""
    ver = build / "verification.json"
    if ver.is_file():
        src = json.loads(ver.read_text()).get("model")
        if src and Path(src).is_file():
            return Path(src)
    path = build / "model.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"no source model for the boundary check: {path} not found and none in {ver}")
    return path


def check_boundary(
    build: Path | str,
    inputs: Path | str | np.ndarray | None = None,
    pairs: int = BOUNDARY_PAIRS,
    seed: int = 0,
    log=print,
    reuse: bool = False,
) -> dict:
    """The hardware-vs-software boundary check: inputs on the quantized software model's decision
    boundary (:mod:`qnnflow.sim.probes`, between the build's test images) through the stitched
    accelerator in batch mode. Writes ``sim/boundary/`` (probes.npy, outputs.npy, results.json,
    boundary.json); every hardware decision must equal QONNX execution of the source model.
    ``inputs``: the images to pair (default: the build's test_inputs.npy, the build's record in
    ``sim/boundary/``; other inputs go to ``sim/runs/boundary-inputs-<digest>/``). ``reuse``: return
    the record at once when nothing it depends on changed."""
    from qnnflow.flows.compile.importer import load_model as load_source
    from qnnflow.sim.probes import NoBoundaryError, boundary_probes

    build = Path(build)
    load_model(build)  # a clear error before any work when the build is not compiled
    src = source_model(build)
    x = _load(inputs, build / "test_inputs.npy", "inputs")
    prepare_rtl(build, log=log)  # first: regenerating rtl/ clears every result made from the old one
    record = inputs is None
    provenance = {**stamps.sim_inputs(build), "source_model": stamps.digest_path(src), "pairs": pairs, "seed": seed}
    out = build / "sim" / "boundary"
    if not record:
        out = build / "sim" / "runs" / f"boundary-inputs-{stamps.digest_array(np.asarray(x))[:8]}"
    elif reuse and stamps.is_current(build, "boundary", provenance) and (out / "boundary.json").is_file():
        log(f"[sim] {build}: boundary check is up to date; reusing it")
        return json.loads((out / "boundary.json").read_text())
    if record:
        stamps.invalidate(build, "boundary")
    log(f"[sim] boundary probes: {pairs} pairs of test images, bisected on {src.name}'s decision boundary")
    out.mkdir(parents=True, exist_ok=True)
    try:
        probes = boundary_probes(load_source(src), x, pairs, seed=seed)
    except NoBoundaryError as why:  # nothing to bisect between: a note, not a failure of the simulation
        result = {"skipped": str(why), "probes": 0, "mismatches": 0, "source_model": str(src), "results_dir": str(out)}
        _write_boundary(build, out, result, provenance if record else None)
        log(f"[sim] boundary probes skipped: {why}")
        return result
    result = _probes_through_hardware(build, out, probes, src, seed)
    _write_boundary(build, out, result, provenance if record else None)
    log(
        f"[sim] boundary: {result['probes']} probes ({result['ties']} exact ties, median margin "
        f"{result['median_margin']:.3g} vs {result['median_test_margin']:.3g} on test images): "
        f"{result['hw_vs_source_decision_mismatches']} hardware decisions differ from {src.name}"
    )
    return result


def _probes_through_hardware(build: Path, out: Path, probes, src: Path, seed: int) -> dict:
    """Simulate the boundary ``probes`` (saved as ``out/probes.npy``, results in ``out``) and compare
    the hardware's decisions with the source model's and its outputs with the dataflow graph's."""
    np.save(out / "probes.npy", probes.inputs)
    r = simulate(build, inputs=probes.inputs, labels=None, log=lambda _m: None, results_dir=out)
    hw = decisions(np.load(out / "outputs.npy"))
    bad = np.flatnonzero(hw != probes.decisions)
    result = {
        **probes.summary(),
        "seed": seed,
        "source_model": str(src),
        "hw_vs_source_decision_mismatches": int(len(bad)),
        "first_mismatching_probes": [int(i) for i in bad[:10]],
        "hw_vs_dataflow_graph_mismatches": r["mismatches"],
        "mismatches": int(len(bad)) + r["mismatches"],  # both kinds; must be 0
    }
    result["results_dir"] = str(out)
    return result


def _write_boundary(build: Path, out: Path, result: dict, provenance: dict | None) -> None:
    """``out/boundary.json``, and for the build's record (``provenance`` given) its stamp."""
    _write_json(out / "boundary.json", result)
    if provenance is not None:
        stamps.write_stamp(build, "boundary", provenance)


def summary(r: dict) -> str:
    acc = ""
    if r["hw_accuracy"] is not None:
        acc = f", hw accuracy {r['hw_accuracy']:.4f} (sw {r['sw_accuracy']:.4f})"
    cyc = ""
    if r["cycles_per_frame_measured"]:
        cyc = (
            f"; {r['cycles_per_frame_measured']:.0f} cycles/frame measured, {r['cycles_per_frame_estimated']} "
            f"estimated; latency {r['latency_cycles']} cycles"
        )
    return f"[sim] {r['frames']} frames ({r['mode']}): {r['mismatches']} mismatches{acc}{cyc}"


def _load(value, default: Path | None, what: str, required: bool = True) -> np.ndarray | None:
    if value is None:
        if default is None or not default.is_file():
            if required:
                raise FileNotFoundError(f"no {what} given and {default} not found: pass --{what} FILE.npy")
            return None
        value = default
    if isinstance(value, (str, Path)):
        return load_npy(value, what)
    return np.asarray(value)
