"""The ``synth-options`` benchmark: which Yosys ``synth_ecp5`` options serve the accelerators.

The trained digits CNN (as the ``implement`` benchmark builds it) is synthesized for the ULX3S-85F
board top with each option set of :data:`OPTION_SETS` and placed with three nextpnr seeds at
150 MHz (:func:`qnnflow.flows.implement.pnr.seed_sweep`). Per set: Fmax per seed and its median,
the cells Yosys made (LUT4, wide-LUT muxes PFUMX / L6MUX21, carry cells, flip-flops) and nextpnr's
TRELLIS_COMB count. Yosys 0.70's ``synth_ecp5`` (``synth_lattice``) always maps with ``abc9``;
``-dff`` lets abc9 work across flip-flops, ``-nowidelut`` keeps it to LUT4s.

``python -m qnnflow.bench --only synth-options``; writes ``synth-options.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from qnnflow.bench.flow import _digits_source, _ulx3s_build
from qnnflow.bench.registry import benchmark

OPTION_SETS = ("", "-nowidelut", "-dff", "-dff -nowidelut")
SEEDS = (1, 2, 3)
BOARD, MHZ = "ulx3s-85f", 150.0
CELLS = ("LUT4", "PFUMX", "L6MUX21", "CCU2C", "TRELLIS_FF", "TRELLIS_DPR16X4", "DP16KD", "MULT18X18D")


@benchmark("synth-options")
def synth_options_bench(args: argparse.Namespace) -> dict:
    from qnnflow.flows.implement.pnr import seed_sweep

    work = Path(getattr(args, "work", None) or "build/bench") / "synth-options"
    shutil.rmtree(work, ignore_errors=True)
    source_note = _digits_source(work / "source")
    build = work / BOARD
    note = _ulx3s_build(build, work / "source")
    rows = []
    for options in OPTION_SETS:
        print(f"[synth-options] synth_ecp5 {options or '(defaults)'}: Yosys once, nextpnr seeds {SEEDS}", flush=True)
        sweep = seed_sweep(build, BOARD, MHZ, SEEDS, progress=None, synth_options=options)
        fmax = [r["fmax_mhz"] for r in sweep["runs"]]
        comb = sweep["runs"][0]["utilization"].get("TRELLIS_COMB", {}).get("used")
        rows.append({
            "synth_command": sweep["synth_command"],
            "fmax_mhz_per_seed": fmax,
            "fmax_mhz_median": statistics.median(fmax),
            "trellis_comb": comb,
            "yosys_cells": {k: sweep["yosys_cells"].get(k, 0) for k in CELLS},
            "synth_seconds": sweep["synth_seconds"],
            "pnr_seconds_median": statistics.median(r["pnr_seconds"] for r in sweep["runs"]),
        })  # fmt: skip
        median = rows[-1]["fmax_mhz_median"]
        print(f"[synth-options]   Fmax {fmax} MHz (median {median}), {comb} TRELLIS_COMB", flush=True)
    return {"model": "digits-cnn-w2a2", "source": source_note, "design": note, "board": BOARD, "clock_mhz": MHZ,
            "seeds": list(SEEDS), "options": rows}  # fmt: skip
