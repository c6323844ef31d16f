"""Benchmarks (``make bench``): each writes ``bench/results/<name>.json`` with the machine's description.

Speed and size are measured here, never in timed tests. Where a figure is timed more than once
the JSON gives every sample and their median. A benchmark writes only under ``--out`` (its
results) and ``--work`` (its builds); it never rewrites a file the tests read.

Run all: ``python -m qnnflow.bench``; one: ``python -m qnnflow.bench --only zoo-digits``.
Each module registers its own benchmarks (:func:`~qnnflow.bench.registry.benchmark`):
:mod:`~qnnflow.bench.methods` (zoo-digits, methods-*), :mod:`~qnnflow.bench.flow` (compile,
implement), :mod:`~qnnflow.bench.sim` (accel-sim), :mod:`~qnnflow.bench.estimates`,
:mod:`~qnnflow.bench.fuzz`, :mod:`~qnnflow.bench.finn` (FINN's networks at FINN's foldings),
:mod:`~qnnflow.bench.synth_options` (Yosys synth_ecp5 options against Fmax and cells),
:mod:`~qnnflow.bench.folding_search` (the resource-aware folding search against the exhaustive optimum).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# imported for their registrations (their heavy imports are inside the benchmark functions)
from qnnflow.bench import estimates, explore, finn, flow, folding_search, fuzz, methods, sim, synth_options  # noqa: E402, F401, I001
from qnnflow.bench.registry import BENCHMARKS, machine

__all__ = ["BENCHMARKS", "main"]


def main(argv: list[str] | None = None) -> int:
    listing = "\n".join(f"  {name:16} {(fn.__doc__ or '').strip().partition(chr(10))[0]}"
                        for name, fn in sorted(BENCHMARKS.items()))
    parser = argparse.ArgumentParser(
        prog="python -m qnnflow.bench",
        description=__doc__.splitlines()[0],
        epilog="benchmarks:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run just these")
    parser.add_argument("--out", default="bench/results", help="folder for the JSON results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--presets", nargs="*", help="zoo-digits: presets to train")
    parser.add_argument(
        "--work", default="build/bench", help="accel-sim, compile, implement, estimates: folder for their builds"
    )
    parser.add_argument("--repeats", type=int, default=1, help="explore-workers: sweeps per worker count (median)")
    finn.main_args(parser)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or sorted(BENCHMARKS):
        described = machine()  # before the run: its load average is the machine's other work
        start = time.perf_counter()
        try:
            result = BENCHMARKS[name](args)
        except FileNotFoundError as err:  # a data file (repo_data) or a build the benchmark reads
            print(f"[{name}] error: {err}", file=sys.stderr)
            return 2
        doc = {"benchmark": name, "machine": described, "wall_seconds": round(time.perf_counter() - start, 2)}
        doc.update(result)
        path = out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"[{name}] -> {path}")
    return 0
