"""The ``accel-sim`` benchmark: the stitched accelerator in Verilator, batch mode and cocotb mode.

For the digits CNN (the build's preset, trained; ``build/digits`` is reused when it holds a
compiled model) and the third-party TFC w2a2 on all 10,000 MNIST test images it records:
- the Verilator build of the batch harness, cold (a fresh cache folder: Verilator's runtime and
  the model) and with the runtime cached (the model alone);
- batch mode: simulated cycles/s and frames/s (median of repeated runs), hardware accuracy,
  mismatches against the dataflow graph, the measured frame period against the estimate;
- cocotb mode (random input idles and backpressure, Python drives every cycle): cycles/s and
  frames/s on a few frames, and its own Verilator build (cold as well).

Work folders go under ``--work`` (default ``build/bench``); ``build/digits`` is only read.
Registered in :mod:`qnnflow.bench`; run it with ``python -m qnnflow.bench --only accel-sim``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from qnnflow.bench.registry import benchmark, repo_data

TFC_MODEL = "tfc_2w2a_qonnx.onnx"
TFC_TARGET_CYCLES = 1000  # the folding tests/sim/test_stitch.py simulates
BATCH_REPEATS = 3
COCOTB_FRAMES = 8
DIGITS_FILES = ("dataflow.onnx", "estimates.json", "test_inputs.npy", "test_labels.npy")


def _digits_build(work: Path) -> tuple[Path, str, Path | None]:
    """A compiled digits CNN in ``work``: copied from build/digits, or trained and compiled."""
    from qnnflow.config import BuildConfig

    work.mkdir(parents=True, exist_ok=True)
    existing = Path("build") / "digits"
    if all((existing / f).is_file() for f in DIGITS_FILES):
        for f in DIGITS_FILES:
            shutil.copy(existing / f, work / f)
        original = existing / "model.onnx"  # with its external data beside it
        return work, f"compiled model copied from {existing}", original if original.is_file() else None
    from qnnflow.build import stage_compile
    from qnnflow.models.train import train_and_export

    cfg = BuildConfig(preset="digits-cnn-w2a2")
    train_and_export(cfg, work, float_baseline=False)
    stage_compile(cfg, work)
    return work, "trained and compiled here (digits-cnn-w2a2, the build's default folding)", work / "model.onnx"


def _tfc_build(work: Path) -> tuple[Path, str, Path]:
    """The third-party TFC w2a2 compiled in ``work`` with all 10,000 MNIST test images beside it."""
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions
    from qnnflow.models.datasets import load_idx_test

    images, labels = load_idx_test(repo_data("mnist"))
    x = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "test_inputs.npy", x)
    np.save(work / "test_labels.npy", labels)
    original = repo_data("third_party", TFC_MODEL)
    if not (work / "dataflow.onnx").is_file():
        opts = CompileOptions(target_cycles=TFC_TARGET_CYCLES)
        compile_model(original, work, inputs=x[:500], opts=opts, verbose=False)
    return work, f"{TFC_MODEL} compiled with target_cycles={TFC_TARGET_CYCLES}", original


def _verilator_builds(build: Path) -> dict:
    """The batch harness built in a fresh cache folder (cold), then again with the runtime cached."""
    from qnnflow.flows.codegen import load_design
    from qnnflow.sim.accel import build_batch

    design = load_design(build / "rtl")
    cache = build / "bench_verilator"
    shutil.rmtree(cache, ignore_errors=True)
    cold = build_batch(design, cache, log=print)
    shutil.rmtree(cold.path.parent)  # the model's folder; the runtime stays in cache/_runtime
    warm = build_batch(design, cache, log=print)
    return {
        "cold_seconds": round(cold.seconds, 2),
        "runtime_cached_seconds": round(warm.seconds, 2),
        "layers": len(design.layers),
        "note": "cold: Verilator runtime and model compiled in a fresh folder; then the model alone",
    }


def _batch_runs(build: Path, x: np.ndarray, repeats: int) -> dict:
    """The batch harness on every frame of ``x``, ``repeats`` times (simulation only, no build)."""
    from qnnflow.flows.codegen import load_design
    from qnnflow.sim.accel import HostIO, build_batch, pack_stream, run_batch
    from qnnflow.sim.stitch import load_model

    design = load_design(build / "rtl")
    exe = build_batch(design, build / "sim" / "verilator", log=print)
    hw_in, _, _ = HostIO(load_model(build), design).run(x)
    words = pack_stream(hw_in, design.input)
    samples, cycles = [], 0
    for i in range(repeats):
        run = run_batch(exe.path, design, words, len(x), build / "bench_batch")
        samples.append(run.seconds)
        cycles = run.cycles
        print(f"  batch run {i + 1}/{repeats}: {run.seconds:.2f} s", flush=True)
    med = statistics.median(samples)
    return {
        "frames": len(x),
        "cycles": cycles,
        "seconds_samples": [round(s, 3) for s in samples],
        "seconds_median": round(med, 3),
        "cycles_per_second": round(cycles / med),
        "frames_per_second": round(len(x) / med, 1),
    }


def _qonnx_agreement(original: Path, x: np.ndarray, y: np.ndarray, hw_out: np.ndarray) -> dict:
    """QONNX execution of the original model (an independent reference) against the hardware."""
    from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx

    print(f"[accel-sim] QONNX execution of {original.name} on {len(x)} inputs", flush=True)
    ref = decisions(run_qonnx(load_qonnx(original), x, batch_size=500))
    return {
        "qonnx_accuracy": float((ref == y).mean()),
        "decisions_differing_from_qonnx": int((decisions(hw_out) != ref).sum()),
    }


def _model_figures(name: str, build: Path, source: str, original: Path | None) -> dict:
    from qnnflow.config import SimMode
    from qnnflow.sim.stitch import simulate

    print(f"[accel-sim] {name}: {source}", flush=True)
    for stale in ("rtl", "sim", "bench_verilator"):  # every figure from a cold start, run after run
        shutil.rmtree(build / stale, ignore_errors=True)
    x, y = np.load(build / "test_inputs.npy"), np.load(build / "test_labels.npy")
    start = time.perf_counter()
    full = simulate(build, inputs=x, labels=y)  # codegen, FIFO sizing, the bit-exact check
    check_seconds = time.perf_counter() - start
    qonnx = _qonnx_agreement(original, x, y, np.load(build / "sim" / "outputs.npy")) if original else {}
    builds = _verilator_builds(build)
    batch = _batch_runs(build, x, BATCH_REPEATS)
    print(f"[accel-sim] {name}: cocotb mode, {COCOTB_FRAMES} frames", flush=True)
    coco = simulate(build, inputs=x, labels=y, mode=SimMode.COCOTB, frames=COCOTB_FRAMES)
    return {
        "model": name,
        "source": source,
        "verilator_build": builds,
        "batch": {
            **batch,
            "mismatches": full["mismatches"],
            "decision_mismatches": full["decision_mismatches"],
            "hw_accuracy": full["hw_accuracy"],
            "sw_accuracy": full["sw_accuracy"],
            **qonnx,
            "ii_measured": full["cycles_per_frame_measured"],
            "ii_estimated": full["cycles_per_frame_estimated"],
            "ii_ratio": full["ii_ratio"],
            "latency_cycles": full["latency_cycles"],
            "latency_cycles_estimated": full["latency_cycles_estimated"],
            "simulate_seconds": round(check_seconds, 2),
            "simulate_note": "qnnflow sim from a clean folder: codegen, FIFO sizing (two Verilator builds), "
            "reference execution, run",
        },
        "cocotb": {
            "frames": coco["frames"],
            "cycles": coco["cycles_simulated"],
            "seconds": coco["sim_seconds"],
            "cycles_per_second": coco["cycles_per_second"],
            "frames_per_second": coco["frames_per_second"],
            "loop_cycles_per_second": coco["loop_cycles_per_second"],
            "mismatches": coco["mismatches"],
            "traffic": coco["traffic"],
            "verilator_build_seconds": coco["verilator_build_seconds"],
            "verilator_build_cached": coco["verilator_build_cached"],
        },
    }


@benchmark("accel-sim")
def accel_sim(args: argparse.Namespace) -> dict:
    """Stitched-accelerator simulation speed and correctness: digits CNN and TFC w2a2 (10,000 images)."""
    work = Path(getattr(args, "work", None) or "build/bench") / "accel-sim"
    rows = [
        _model_figures("digits-cnn-w2a2", *_digits_build(work / "digits")),
        _model_figures("tfc-w2a2 (third party)", *_tfc_build(work / "tfc")),
    ]
    for r in rows:
        b, c = r["batch"], r["cocotb"]
        print(
            f"[accel-sim] {r['model']}: build {r['verilator_build']['cold_seconds']} s cold; batch "
            f"{b['cycles_per_second']:,} cycles/s, {b['frames_per_second']:,} frames/s, {b['mismatches']} mismatches "
            f"in {b['frames']} frames, hw accuracy {b['hw_accuracy']}, II {b['ii_measured']} / {b['ii_estimated']}; "
            f"cocotb {c['cycles_per_second']:,} cycles/s ({c['loop_cycles_per_second']:,} in its loop), "
            f"{c['frames_per_second']} frames/s",
            flush=True,
        )
    return {
        "note": f"batch figures: median of {BATCH_REPEATS} runs of the harness on every frame (no build); "
        f"cocotb: one run of {COCOTB_FRAMES} frames with random stalls (no build); its cycles/s and frames/s "
        "include the simulator's start-up (~2 s), loop_cycles_per_second is the clocked loop alone",
        "rows": rows,
    }
