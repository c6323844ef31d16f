"""The ``finn`` benchmark: FINN's own networks at FINN's own foldings, beside FINN's published figures.

Designs (:data:`DESIGNS`; ``--designs`` picks some): the zoo's tfc-w1a1, tfc-w2a2, cnv-w1a1 and
cnv-w2a2 with random weights and random BatchNorm statistics (no MNIST / CIFAR-10 in the
repository; weights change the logic little, since they sit in memories), compiled at FINN's
published foldings (``--folding finn:tfc`` / ``finn:cnv-w1a1`` / ``finn:cnv-w2a2``); the digits CNN
w2a2 and w8a4, trained on the 8x8 digits (seed 0), at the build's default folding (w8a8 on request:
:data:`DEFAULT_DESIGNS`). For each:

- II: the compiler's estimate, and measured in the stitched accelerator (Verilator, batch mode) on
  :data:`SIM_FRAMES` frames, every output compared with the dataflow graph's (bit-exact);
- the wall time of code generation with FIFO sizing by simulation (two Verilator builds included);
- xc7z020: LUT6 / FF / BRAM18 of Yosys ``synth_xilinx`` of the accelerator alone;
- ECP5-85F (ULX3S-85F, the board top with its UART, constraint 150 MHz, the clock aimed for): LUT4 / FF / DP16KD and
  Fmax after nextpnr, the median over ``--pnr-seeds`` seeds (default 3; 0: no place and route),
  one synthesis for all seeds (:func:`qnnflow.flows.implement.pnr.seed_sweep`); frames/s at
  that Fmax and the measured II;
- FINN's published figures (:data:`FINN_PUBLISHED`) with their source and what differs.

Writes ``finn.json`` (by the runner) and ``finn.md`` under ``--out``; builds under ``--work``/finn.
Full run: ``python -m qnnflow.bench --only finn``; quick: ``--designs tfc-w1a1 --pnr-seeds 1``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qnnflow.bench.registry import benchmark

SIM_FRAMES = 8
COMPILE_SAMPLES = 16
PNR_BOARD, PNR_MHZ = "ulx3s-85f", 150.0  # the clock aimed for: nextpnr places for it, Fmax is what it reached


@dataclass(frozen=True)
class Design:
    preset: str
    weights: str  # "random" (models.zoo.random_model, seed 0) or "trained" (the digits, seed 0)
    folding: str | None  # a --folding (finn:...) or None: the build's ECP5 default


DESIGNS = {
    "tfc-w1a1": Design("tfc-w1a1", "random", "finn:tfc"),
    "tfc-w2a2": Design("tfc-w2a2", "random", "finn:tfc"),
    "cnv-w1a1": Design("cnv-w1a1", "random", "finn:cnv-w1a1"),
    "cnv-w2a2": Design("cnv-w2a2", "random", "finn:cnv-w2a2"),
    "digits-cnn-w2a2": Design("digits-cnn-w2a2", "trained", None),
    "digits-cnn-w8a4": Design("digits-cnn-w8a4", "trained", None),
    "digits-cnn-w8a8": Design("digits-cnn-w8a8", "trained", None),
}
# run when no --designs are given: w8a8 only on request, since its 8-bit activations are compared
# with all 255 thresholds at once (~30,000 LUT4 and ~180 DP16KD placed, routing > 16 minutes here);
# the 8-bit model of the default table is w8a4 (8-bit weights on 4-bit activations)
DEFAULT_DESIGNS = [name for name in DESIGNS if name != "digits-cnn-w8a8"]

_THROUGHPUT = (
    "finn-examples (bnn-pynq), measured on a Pynq board at 100 MHz, trained weights; the bound is "
    "100 MHz / the II; includes the host's DMA transfers"
)
_BNN_PYNQ = (
    "BNN-PYNQ, post-implementation on xc7z020: the whole Zynq design with its DMA shell (qnnflow: the "
    "accelerator alone, Yosys synth_xilinx before placement); BRAM in BRAM36-equivalent tiles (2 x BRAM18)"
)
FINN_PUBLISHED = {
    "tfc-w1a1": {"images_per_s": 837_019, "ii_bound_images_per_s": 1_562_500, "clock_mhz": 100,
                 "source": _THROUGHPUT},
    "cnv-w1a1": {"images_per_s": 3_020, "ii_bound_images_per_s": 3_052, "clock_mhz": 100, "source": _THROUGHPUT,
                 "xc7z020_lut": 26_072, "xc7z020_bram36_tiles": 124, "resources_source": _BNN_PYNQ},
    "cnv-w2a2": {"xc7z020_lut": 37_302, "xc7z020_bram36_tiles": 140, "resources_source": _BNN_PYNQ},
}  # fmt: skip
FINN_NOT_BUILT = [{"design": "LFC-W1A1", "xc7z020_lut": 28_360, "xc7z020_bram36_tiles": 110, "source": _BNN_PYNQ}]
CAVEATS = [
    "random weights for TFC / CNV (FINN's figures: trained networks)",
    "qnnflow's TFC takes the 8-bit pixels in its first MVAU; FINN's binarizes them in a Thresholding "
    "layer first (Thresholding_Batch_0 has no counterpart here)",
    "the FINN folding configs set no PE for max-pooling; qnnflow folds its MaxPool to the II itself",
    "ECP5 figures include the UART board top; xc7z020 figures are the accelerator alone",
]


def _source(folder: Path, d: Design) -> tuple[Path, np.ndarray, str]:
    """The design's QONNX model, its inputs (COMPILE_SAMPLES) and where it came from."""
    from qnnflow.models.zoo import parse_preset

    folder.mkdir(parents=True, exist_ok=True)
    if d.weights == "random":
        from qnnflow.bench.flow import _random_preset

        shape = parse_preset(d.preset).input_shape
        x = (np.random.default_rng(1).integers(0, 256, size=(COMPILE_SAMPLES, *shape)) / 255).astype(np.float32)
        return _random_preset(folder, d.preset), x, "random weights (models.zoo.random_model, seed 0), pixel / 255"
    if d.preset == "digits-cnn-w2a2":
        from qnnflow.bench.flow import _digits_source

        note = _digits_source(folder)
    else:
        from qnnflow.config import BuildConfig
        from qnnflow.models.train import train_and_export

        train_and_export(BuildConfig(preset=d.preset), folder, float_baseline=False)
        note = f"trained here ({d.preset}, seed 0)"
    return folder / "model.onnx", np.load(folder / "test_inputs.npy")[:COMPILE_SAMPLES], note + ", test images"


def _compile(path: Path, x: np.ndarray, build: Path, d: Design) -> dict:
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.finn_folding import resolve_folding
    from qnnflow.flows.compile.folding import DEFAULT_TARGET_CYCLES
    from qnnflow.flows.compile.steps import CompileOptions

    if d.folding:
        opts = CompileOptions(folding=resolve_folding(d.folding))
    else:
        opts = CompileOptions(target_cycles=DEFAULT_TARGET_CYCLES["ecp5"], default_target=True)
    res = compile_model(path, build, inputs=x, opts=opts, verbose=False)
    est = res.estimates
    row = {
        "folding": d.folding or f"build default ({DEFAULT_TARGET_CYCLES['ecp5']:,} cycles target, ECP5)",
        "ii_estimated": est["ii_cycles"],
        "bottleneck": est["bottleneck"],
        "compile_seconds": round(res.seconds, 2),
        "compile_decision_mismatches": res.checks[-1]["decision_mismatches"],
        "estimates": est["totals"],
    }
    if res.finn_folding:
        f = res.finn_folding
        row["finn_folding"] = {
            "applied": {a["finn_node"]: a["layer"] for a in f["applied"]},
            "no_counterpart": [n["finn_node"] for n in f["no_counterpart"]],
            "qnnflow_folded": {q["layer"]: q["set"] for q in f["qnnflow_folded"]},
            "ignored_keys": sorted(f["ignored_keys"]),
        }
    return row


def _simulate(build: Path, x: np.ndarray) -> dict:
    """Code generation with FIFO sizing (timed), then the stitched accelerator on ``x``."""
    from qnnflow.sim.fifo_sizing import load_record
    from qnnflow.sim.stitch import prepare_rtl, simulate

    start = time.perf_counter()
    prepare_rtl(build, x, log=print)
    sizing_s = time.perf_counter() - start
    record = load_record(build / "rtl") or {}
    r = simulate(build, inputs=x, results_dir=build / "sim" / "bench", log=print)
    return {
        "codegen_fifo_sizing_seconds": round(sizing_s, 2),
        "fifo_sizing_verilator_build_seconds": round(record.get("build_seconds", 0.0), 2),
        "fifo_sizing_fallback": record.get("fallback"),
        "frames": r["frames"],
        "ii_measured": r["cycles_per_frame_measured"],
        "mismatches": r["mismatches"],
        "decision_mismatches": r["decision_mismatches"],
        "bit_exact": r["mismatches"] == 0,
    }


def _xilinx(build: Path) -> dict:
    from qnnflow.flows.implement import xilinx_estimate

    est = xilinx_estimate(build, progress=print)
    return {**{k: est["used"][k] for k in ("LUT6", "FF", "BRAM18", "DSP48")}, "seconds": est["seconds"]}


def _ecp5(build: Path, seeds: int, ii: int | None) -> dict:
    from qnnflow.flows.implement.pnr import seed_sweep

    sweep = seed_sweep(build, PNR_BOARD, PNR_MHZ, tuple(range(1, seeds + 1)), progress=print)
    runs = sweep["runs"]
    util = runs[0]["utilization"]
    fmax = [r["fmax_mhz"] for r in runs]
    median = round(statistics.median(fmax), 2)
    return {
        "board": sweep["board"],
        "constraint_mhz": sweep["clock_mhz"],
        **{name: util.get(cell, {}).get("used") for name, cell in
           (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("DP16KD", "DP16KD"), ("MULT18", "MULT18X18D"))},
        "utilization_same_for_every_seed": all(r["utilization"] == util for r in runs),
        "fmax_mhz_per_seed": fmax,
        "fmax_mhz_median": median,
        "frames_per_s_at_fmax": round(median * 1e6 / ii) if ii else None,
        "synth_seconds": sweep["synth_seconds"],
        "pnr_seconds_per_seed": [r["pnr_seconds"] for r in runs],
        "tools": sweep["tools"],
    }  # fmt: skip


def _stage(row: dict, key: str, fn) -> bool:
    """``row[key] = fn()``; a tool failure or a design that does not fit is recorded, not raised."""
    from qnnflow.errors import FlowError

    try:
        row[key] = fn()
        return True
    except FlowError as err:
        row[key] = {"error": str(err).splitlines()[0]}
        print(f"[finn] {row['design']} {key}: {row[key]['error']}", flush=True)
        return False


def run_design(name: str, work: Path, seeds: int) -> dict:
    d = DESIGNS[name]
    build = work / name
    shutil.rmtree(build, ignore_errors=True)
    path, x, note = _source(work / "sources" / name, d)
    row: dict = {"design": name, "weights": note}
    print(f"[finn] {name}: compile ({d.folding or 'default folding'})", flush=True)
    row["compile"] = _compile(path, x, build, d)
    print(f"[finn] {name}: II estimated {row['compile']['ii_estimated']:,}; simulation", flush=True)
    if _stage(row, "sim", lambda: _simulate(build, x[:SIM_FRAMES])):
        _stage(row, "xc7z020", lambda: _xilinx(build))
        if seeds > 0:
            ii = row["sim"]["ii_measured"] or row["compile"]["ii_estimated"]
            _stage(row, "ecp5", lambda: _ecp5(build, seeds, ii))
    row["finn_published"] = FINN_PUBLISHED.get(name)
    return row


@benchmark("finn")
def finn_bench(args: argparse.Namespace) -> dict:
    """FINN's TFC / CNV at FINN's foldings and two digits CNNs: II, FIFO sizing, xc7z020 and ECP5 figures."""
    designs = getattr(args, "designs", None) or DEFAULT_DESIGNS
    unknown = [n for n in designs if n not in DESIGNS]
    if unknown:
        raise ValueError(f"--designs: unknown {unknown}; the finn benchmark has {list(DESIGNS)}")
    seeds = getattr(args, "pnr_seeds", 3)
    if seeds < 0:
        raise ValueError(f"--pnr-seeds must not be negative, not {seeds}")
    work = Path(getattr(args, "work", None) or "build/bench") / "finn"
    rows = [run_design(name, work, seeds) for name in designs]
    result = {
        "note": f"II measured: stitched accelerator in Verilator on {SIM_FRAMES} frames, outputs compared with "
        f"the dataflow graph's; ECP5: {PNR_BOARD} board top, {PNR_MHZ:g} MHz constraint, median Fmax over "
        f"{seeds} nextpnr seeds; frames/s at Fmax: median Fmax / measured II",
        "caveats": CAVEATS,
        "pnr_seeds": seeds,
        "rows": rows,
        "finn_published_not_built": FINN_NOT_BUILT,
    }
    out = Path(getattr(args, "out", None) or "bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "finn.md").write_text(markdown(result))
    print(f"[finn] -> {out / 'finn.md'}", flush=True)
    return result


def _cell(row: dict, key: str, fmt) -> str:
    part = row.get(key)
    if part is None:
        return "-"
    if "error" in part:
        return "error"
    return fmt(part)


def _fmax(e: dict) -> str:
    return f"{e['fmax_mhz_median']:.1f}; " + ", ".join(f"{v:.1f}" for v in e["fmax_mhz_per_seed"])


def markdown(result: dict) -> str:
    """The benchmark's table, then FINN's published figures beside it."""
    lines = [
        "| design | folding | II est. | II sim | bit-exact | codegen + FIFO sizing s | xc7z020 LUT6 / FF / BRAM18 "
        "| ECP5 LUT4 / FF / DP16KD | Fmax MHz (median; seeds) | frames/s at Fmax |",
        "|---|---|---:|---:|---|---:|---|---|---|---:|",
    ]
    for r in result["rows"]:
        c = r["compile"]
        lines.append(" | ".join([
            f"| {r['design']}", c["folding"], f"{c['ii_estimated']:,}",
            _cell(r, "sim", lambda s: f"{s['ii_measured']:,g}" if s["ii_measured"] else "-"),
            _cell(r, "sim", lambda s: f"yes ({s['frames']} frames)" if s["bit_exact"] else f"NO ({s['mismatches']})"),
            _cell(r, "sim", lambda s: f"{s['codegen_fifo_sizing_seconds']:.0f}"),
            _cell(r, "xc7z020", lambda x: f"{x['LUT6']:,} / {x['FF']:,} / {x['BRAM18']}"),
            _cell(r, "ecp5", lambda e: f"{e['LUT4']:,} / {e['FF']:,} / {e['DP16KD']}"),
            _cell(r, "ecp5", _fmax),
            _cell(r, "ecp5", lambda e: f"{e['frames_per_s_at_fmax']:,}") + " |",
        ]))  # fmt: skip
    lines += ["", "FINN's published figures:", "",
              "| design | images/s | II bound images/s | xc7z020 LUT | BRAM36 tiles | source |",
              "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    published = [(r["design"], r["finn_published"]) for r in result["rows"] if r["finn_published"]]
    published += [(p["design"], p) for p in result["finn_published_not_built"]]
    sources: list[str] = []  # footnotes, numbered in order of use
    for name, p in published:
        refs = []
        for src in (p[k] for k in ("source", "resources_source") if k in p):
            if src not in sources:
                sources.append(src)
            refs.append(f"[{sources.index(src) + 1}]")
        vals = [p.get(k) for k in ("images_per_s", "ii_bound_images_per_s", "xc7z020_lut", "xc7z020_bram36_tiles")]
        cells = ["-" if v is None else f"{v:,}" for v in vals]
        lines.append(f"| {name} | " + " | ".join([*cells, " ".join(refs)]) + " |")
    lines += ["", *(f"[{i}] {src}" for i, src in enumerate(sources, start=1))]
    lines += ["", "Caveats:", *(f"- {c}" for c in result["caveats"]), ""]
    return "\n".join(lines)


def main_args(parser: argparse.ArgumentParser) -> None:
    """The options of this benchmark on the runner's command line."""
    parser.add_argument("--designs", nargs="*", choices=list(DESIGNS), help="finn: the designs (default: all)")
    parser.add_argument(
        "--pnr-seeds", type=int, default=3, help="finn: nextpnr seeds per design on ECP5 (0: no place and route)"
    )
