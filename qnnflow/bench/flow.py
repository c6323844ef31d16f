"""The ``compile`` and ``implement`` benchmarks: the compiler's wall time, and Yosys / nextpnr on two boards.

``compile``: :func:`qnnflow.flows.compile.driver.compile_model` (every step verified against QONNX
execution of the original) on seven models, with the default folding (every layer at
PE = SIMD = 1) and with a target in cycles per frame, the median of ``COMPILE_REPEATS`` runs on
``COMPILE_SAMPLES`` verification inputs each:
- the trained digits CNN w2a2 (``build/digits`` is copied when it holds a trained model, else one
  is trained here), on its own test images;
- tfc-w1a1, tfc-w2a2, cnv-w1a1 and cnv-w2a2 with random weights and random BatchNorm statistics,
  on random inputs at the data set's input levels (pixel / 255);
- the two third-party TFCs in ``tests/data/third_party``, on MNIST test images; these are
  also compiled once on all 10,000 MNIST test images for the dataflow graph's accuracy against
  QONNX execution of the original.

``implement``: the bitstream stage (:func:`qnnflow.flows.implement.bitstream_stage`) of the
digits CNN on ULX3S-85F at 50 MHz (``build/digits``'s compiled model and RTL, copied) and on
iCEBreaker at 24 MHz (compiled here with the iCE40 default target of 50,000 cycles per frame),
with nextpnr seeds ``IMPL_SEEDS``: synthesis / place-and-route / pack seconds, Fmax per seed,
utilization, and the xc7z020 estimate once per board.

Work folders go under ``--work`` (default ``build/bench``); ``build/digits`` is only read.
Registered in :mod:`qnnflow.bench`: ``python -m qnnflow.bench --only compile`` (or ``implement``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qnnflow.bench.registry import benchmark, repo_data, timed

COMPILE_REPEATS = 3
COMPILE_SAMPLES = 100
IMPL_SEEDS = (1, 2, 3)
RANDOM_PRESETS = ("tfc-w1a1", "tfc-w2a2", "cnv-w1a1", "cnv-w2a2")
# cycles per frame for the folded compile: the build's ECP5 default for the digits CNN; the
# folding tests/sim/test_stitch.py simulates for the TFCs and CNV
TARGET_CYCLES = {"digits": 10_000, "tfc": 1_000, "cnv": 50_000}
THIRD_PARTY = {
    # file: (input scale, note) -- see tests/data/README.md
    "tfc_2w2a_qonnx.onnx": (1 / 255, "Brevitas QONNX export, float pixel / 255"),
    "tfc_w1a2_finn_onnx.onnx": (1.0, "FINN-ONNX, raw pixels 0..255"),
}
DIGITS_SOURCE_FILES = ("model.onnx", "model.onnx.data", "test_inputs.npy", "test_labels.npy")
BOARDS = (("ulx3s-85f", 150.0), ("icebreaker", 48.0))  # the clocks aimed for (issue: 150 MHz ECP5, 48 MHz iCE40)

_REPO = Path(__file__).resolve().parents[2]


def _digits_existing() -> Path:
    return _REPO / "build" / "digits"


def _digits_source(folder: Path) -> str:
    """The trained digits CNN w2a2 (model.onnx with its test images) in ``folder``: copied from
    build/digits when it has one, else trained here. Returns where it came from."""
    from qnnflow.config import BuildConfig

    folder.mkdir(parents=True, exist_ok=True)
    existing = _digits_existing()
    required = [f for f in DIGITS_SOURCE_FILES if f != "model.onnx.data"]
    metrics = existing / "metrics.json"
    if all((existing / f).is_file() for f in required) and metrics.is_file():
        if json.loads(metrics.read_text()).get("preset") == "digits-cnn-w2a2":
            for f in DIGITS_SOURCE_FILES:
                if (existing / f).is_file():
                    shutil.copy(existing / f, folder / f)
            return f"trained model copied from {existing}"
    from qnnflow.models.train import train_and_export

    train_and_export(BuildConfig(preset="digits-cnn-w2a2"), folder, float_baseline=False)
    return "trained here (digits-cnn-w2a2, seed 0)"


def _random_preset(folder: Path, preset: str) -> Path:
    """A zoo preset with random weights and random BatchNorm statistics, exported to QONNX."""
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    return export_qonnx(random_model(preset), folder / f"{preset}.onnx", parse_preset(preset).input_shape)


@dataclass(frozen=True)
class CompileCase:
    """One model of the ``compile`` benchmark."""

    name: str
    source: str
    path: Path
    inputs: np.ndarray  # the verification inputs (COMPILE_SAMPLES of them)
    target_cycles: int


def _mnist(scale: float) -> tuple[np.ndarray, np.ndarray]:
    from qnnflow.models.datasets import load_idx_test

    images, labels = load_idx_test(repo_data("mnist"))
    return (images.reshape(-1, 1, 28, 28).astype(np.float32) * np.float32(scale)), labels


def compile_cases(work: Path) -> list[CompileCase]:
    """The models of the ``compile`` benchmark, written into ``work``."""
    from qnnflow.models.zoo import parse_preset

    cases = []
    digits = work / "digits"
    note = _digits_source(digits)
    x = np.load(digits / "test_inputs.npy")[:COMPILE_SAMPLES]
    cases.append(CompileCase("digits-cnn-w2a2", note, digits / "model.onnx", x, TARGET_CYCLES["digits"]))
    rng = np.random.default_rng(1)
    for preset in RANDOM_PRESETS:
        shape = parse_preset(preset).input_shape
        path = _random_preset(work / "random", preset)
        x = (rng.integers(0, 256, size=(COMPILE_SAMPLES, *shape)) / 255).astype(np.float32)
        topo = preset.split("-")[0]
        cases.append(CompileCase(preset, "random weights, random inputs (pixel / 255)", path, x, TARGET_CYCLES[topo]))
    for name, (scale, note) in THIRD_PARTY.items():
        x, _ = _mnist(scale)
        path = repo_data("third_party", name)
        cases.append(CompileCase(name, f"third party: {note}; MNIST test images", path, x[:COMPILE_SAMPLES], 1_000))
    return cases


def _source_nodes(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def compile_figures(case: CompileCase, out: Path, target_cycles: int | None, repeats: int) -> dict:
    """``compile_model`` on ``case`` ``repeats`` times into ``out``: its figures and wall time."""
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions

    opts = CompileOptions(target_cycles=target_cycles)
    results = []
    samples, median = timed(
        lambda: results.append(compile_model(case.path, out, inputs=case.inputs, opts=opts, verbose=False)),
        repeats,
    )
    est = results[-1].estimates
    ops = Counter(layer["op_type"] for layer in est["layers"])
    final = results[-1].checks[-1]
    return {
        "folding": "default (PE = SIMD = 1)" if target_cycles is None else f"target_cycles={target_cycles}",
        "hw_layers": len(est["layers"]),
        "compute_layers": sum(n for op, n in ops.items() if op not in ("FIFO", "WidthConverter")),
        "layer_ops": dict(sorted(ops.items())),
        "ii_cycles": est["ii_cycles"],
        "bottleneck": est["bottleneck"],
        "lut4": est["totals"]["ecp5"]["LUT4"],
        "dp16kd": est["totals"]["ecp5"]["DP16KD"],
        "seconds_samples": [round(s, 2) for s in samples],
        "seconds_median": round(median, 2),
        "verification_samples": final["samples"],
        "final_step_decision_mismatches": final["decision_mismatches"],
        "final_step_integer_exact": final["integer_exact"],
    }


def third_party_accuracy(name: str, out: Path) -> dict:
    """A third-party TFC compiled once on all 10,000 MNIST test images (every step verified on them):
    the dataflow graph's accuracy against QONNX execution of the original."""
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions

    scale, _ = THIRD_PARTY[name]
    x, y = _mnist(scale)
    print(f"[compile] {name}: all {len(x):,} MNIST test images", flush=True)
    opts = CompileOptions(target_cycles=1_000)
    res = compile_model(repo_data("third_party", name), out, inputs=x, opts=opts, labels=y, verbose=False)
    ver = json.loads((out / "verification.json").read_text())
    return {
        "model": name,
        "images": len(x),
        "dataflow_accuracy": res.accuracy,
        "qonnx_reference_accuracy": ver["reference_accuracy"],
        "final_step_decision_mismatches": ver["steps"][-1]["decision_mismatches"],
        "final_step_integer_exact": ver["steps"][-1]["integer_exact"],
        "compile_seconds": round(res.seconds, 1),
    }


@benchmark("compile")
def compile_bench(args: argparse.Namespace) -> dict:
    """Compile time and result of seven models, default folding and a cycle target."""
    work = Path(getattr(args, "work", None) or "build/bench") / "compile"
    shutil.rmtree(work, ignore_errors=True)
    rows = []
    for case in compile_cases(work):
        row = {"model": case.name, "source": case.source, "source_nodes": _source_nodes(case.path), "runs": []}
        for target in (None, case.target_cycles):
            label = "default folding" if target is None else f"target {target:,} cycles"
            print(f"[compile] {case.name}, {label}: {COMPILE_REPEATS} runs on {len(case.inputs)} inputs", flush=True)
            run = compile_figures(case, work / "out" / case.name, target, COMPILE_REPEATS)
            row["runs"].append(run)
            print(
                f"  {run['seconds_median']} s (median of {run['seconds_samples']}), {run['hw_layers']} HW layers, "
                f"II {run['ii_cycles']:,}, {run['lut4']:,} LUT4, {run['dp16kd']} DP16KD",
                flush=True,
            )
        rows.append(row)
    accuracy = [third_party_accuracy(name, work / "accuracy" / name) for name in THIRD_PARTY]
    for a in accuracy:
        print(
            f"[compile] {a['model']}: dataflow accuracy {a['dataflow_accuracy']:.4f}, "
            f"QONNX {a['qonnx_reference_accuracy']:.4f} on {a['images']:,} images",
            flush=True,
        )
    return {
        "note": f"seconds: wall time of compile_model (verbose=False), median of {COMPILE_REPEATS} runs, every step "
        f"verified against QONNX execution of the original on {COMPILE_SAMPLES} inputs; lut4 / dp16kd / ii_cycles: "
        "the compiler's analytical estimates (ECP5), not synthesis; source_nodes: nodes of the ONNX file as given; "
        "hw_layers: nodes of the dataflow graph; compute_layers: those other than FIFOs and width converters",
        "repeats": COMPILE_REPEATS,
        "rows": rows,
        "third_party_mnist_accuracy": accuracy,
    }


# -- implement ------------------------------------------------------------------------------------


def _ulx3s_build(folder: Path, source: Path) -> str:
    """The digits CNN compiled for ECP5 with its RTL in ``folder``: build/digits's, copied, when it
    has them (the RTL regenerated if it does not match dataflow.onnx), else compiled here."""
    from qnnflow.sim.stitch import STAMP, prepare_rtl

    existing = _digits_existing()
    files = ("dataflow.onnx", "estimates.json", "folding.json", "verification.json", "test_inputs.npy")
    if all((existing / f).is_file() for f in files) and (existing / "rtl" / "design.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(existing / f, folder / f)
        shutil.copytree(existing / "rtl", folder / "rtl")
        note = f"compiled model and RTL copied from {existing}"
    else:
        _compile_digits(folder, source, "ecp5", 50.0)
        note = "compiled here from the trained model"
    stamp = folder / "rtl" / STAMP
    before = stamp.read_text() if stamp.is_file() else None
    prepare_rtl(folder, log=print)  # a no-op when the RTL matches dataflow.onnx and the current sources
    if before is not None and stamp.read_text() != before:
        note += "; RTL regenerated (the copy was older than dataflow.onnx or the RTL sources)"
    return note


def _compile_digits(folder: Path, source: Path, family: str, clock_mhz: float) -> int:
    """The trained digits CNN in ``source`` compiled into ``folder`` with the build's default folding for
    ``family``; returns the target in cycles per frame."""
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.folding import DEFAULT_TARGET_CYCLES
    from qnnflow.flows.compile.steps import CompileOptions

    folder.mkdir(parents=True, exist_ok=True)
    target = DEFAULT_TARGET_CYCLES[family]
    opts = CompileOptions(target_cycles=target, clock_mhz=clock_mhz)
    # (the compile stage clears its folder's old outputs first: the test set is copied after it)
    compile_model(source / "model.onnx", folder, inputs=source / "test_inputs.npy", opts=opts, verbose=False)
    for f in ("test_inputs.npy", "test_labels.npy"):
        shutil.copy(source / f, folder / f)
    return target


def _icebreaker_build(folder: Path, source: Path) -> str:
    from qnnflow.sim.stitch import prepare_rtl

    target = _compile_digits(folder, source, "ice40", 48.0)
    prepare_rtl(folder, log=print)
    return f"compiled here with target_cycles={target:,} (the build's iCE40 default)"


def _seed_run(build: Path, board: str, mhz: float, seed: int, xilinx: bool) -> dict:
    """One bitstream stage with nextpnr seed ``seed``; a missed clock is recorded, not raised."""
    from qnnflow.errors import FlowError
    from qnnflow.flows.implement import bitstream_stage
    from qnnflow.flows.implement.report import build_report

    print(f"[implement] {board} at {mhz:g} MHz, nextpnr seed {seed}", flush=True)
    error = None
    try:
        bitstream_stage(build, board, mhz, seed=seed, xilinx=xilinx, progress=print)
    except FlowError as err:  # timing missed: impl.json holds what was measured
        error = str(err)
        print(f"  {error}", flush=True)
    out = build / "impl" / board
    impl = json.loads((out / "impl.json").read_text())
    if impl["seed"] != seed:
        raise RuntimeError(f"{out / 'impl.json'} says seed {impl['seed']}, the run asked for {seed}")
    shutil.copy(out / "impl.json", build / f"impl_{board}_seed{seed}.json")
    report = build_report(build, board)
    return {
        "seed": seed,
        "fmax_mhz": report["performance"]["fmax_mhz"],
        "timing_met": impl["timing_met"],
        "bitstream": impl["bitstream"] is not None,
        "seconds": {k: round(v, 2) for k, v in impl["seconds"].items()},
        "utilization": report["utilization"],
        "error": error,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def board_figures(build: Path, board: str, mhz: float, seeds: tuple[int, ...], note: str) -> dict:
    """The bitstream stage once per seed; the xc7z020 estimate with the first."""
    from qnnflow.flows.implement import xilinx_estimate

    runs = [_seed_run(build, board, mhz, seed, xilinx=i == 0) for i, seed in enumerate(seeds)]
    est_path = build / "impl" / "xc7z020" / "estimate.json"
    xc7 = json.loads(est_path.read_text()) if est_path.is_file() else xilinx_estimate(build, progress=print)
    estimates = json.loads((build / "estimates.json").read_text())
    seconds = {
        step: {
            "samples": [r["seconds"][step] for r in runs if step in r["seconds"]],
            "median": _median([r["seconds"][step] for r in runs if step in r["seconds"]]),
        }
        for step in ("synth", "pnr", "pack")
    }
    fmax = [r["fmax_mhz"] for r in runs]
    return {
        "board": board,
        "clock_mhz": mhz,
        "design": note,
        "ii_cycles_estimated": estimates["ii_cycles"],
        "seeds": list(seeds),
        "seconds": seconds,
        "fmax_mhz_per_seed": fmax,
        "fmax_mhz_median": _median(fmax),
        "timing_met_per_seed": [r["timing_met"] for r in runs],
        "utilization": runs[0]["utilization"],
        "utilization_same_for_every_seed": all(r["utilization"] == runs[0]["utilization"] for r in runs),
        "xc7z020_estimate": {k: xc7[k] for k in ("used", "available", "percent", "seconds")},
        "runs": runs,
    }


@benchmark("implement")
def implement_bench(args: argparse.Namespace) -> dict:
    """Yosys / nextpnr / pack on ULX3S-85F and iCEBreaker for the digits CNN, three nextpnr seeds each."""
    work = Path(getattr(args, "work", None) or "build/bench") / "implement"
    shutil.rmtree(work, ignore_errors=True)
    source = work / "source"
    source_note = _digits_source(source)
    print(f"[implement] digits-cnn-w2a2: {source_note}", flush=True)
    builds = {"ulx3s-85f": _ulx3s_build, "icebreaker": _icebreaker_build}
    boards = []
    for board, mhz in BOARDS:
        build = work / board
        note = builds[board](build, source)
        fig = board_figures(build, board, mhz, IMPL_SEEDS, note)
        boards.append(fig)
        s = fig["seconds"]
        print(
            f"[implement] {board}: synth {s['synth']['median']} s, pnr {s['pnr']['median']} s, "
            f"pack {s['pack']['median']} s; Fmax {fig['fmax_mhz_per_seed']} MHz (median {fig['fmax_mhz_median']})",
            flush=True,
        )
    return {
        "model": "digits-cnn-w2a2",
        "source": source_note,
        "note": "seconds: median over the seeds of each tool's wall time (pack only where timing was met); "
        "utilization from nextpnr's report of the first seed; xc7z020: Yosys synth_xilinx of the accelerator alone",
        "boards": boards,
    }
