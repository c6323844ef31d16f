"""The ``explore-workers`` benchmark: how much faster a sweep runs on 2 Ray workers than on 1.

The same small digits space (two precisions, one folding, two boards: 2 trainings, 2 compilations, 2
simulations of the whole test set, 4 place-and-route runs on ECP5 and iCE40) is swept from an empty
folder with a local Ray instance of 1 CPU and of 2 CPUs, ``--repeats`` times each (default 1); the
medians of the wall times and their ratio are recorded. On a 2-core machine 2 is the most the ratio
can be; Ray's start, the workers' imports (torch, Brevitas) and Verilator's own parallel C++ build
(``-j 2`` inside one task) hold it lower.

``python -m qnnflow.bench --only explore-workers``; writes ``explore-workers.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from qnnflow.bench.registry import benchmark

SPACE = """
[explore]
name = "bench"
dataset = "digits"
fidelity = "implement"
epochs = 20

[[grid]]
topology = "digits-cnn"
precision = ["w1a1", "w2a2"]
cycles = 36864
board = ["ulx3s-85f", "icebreaker"]
"""


@benchmark("explore-workers")
def explore_workers_bench(args: argparse.Namespace) -> dict:
    """Wall time of a small explore sweep on 1 and 2 local Ray workers; the speedup."""
    import tomllib

    from qnnflow.explore import explore
    from qnnflow.explore.space import parse_space

    work = Path(getattr(args, "work", None) or "build/bench") / "explore-workers"
    repeats = getattr(args, "repeats", None) or 1
    space = parse_space(tomllib.loads(SPACE), "explore-workers space")
    times: dict[int, list[float]] = {1: [], 2: []}
    for k in range(repeats):
        for workers in (1, 2):
            out = work / f"w{workers}-{k}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            res = explore(space, out, workers=workers, say=lambda s: None)
            times[workers].append(round(time.perf_counter() - start, 2))
            bad = [r["name"] for r in res["rows"] if r["status"] != "ok"]
            if bad:
                raise RuntimeError(f"explore-workers: points failed: {bad}")
            print(f"[explore-workers] {workers} worker(s): {times[workers][-1]:.1f} s", flush=True)
    med = {w: statistics.median(t) for w, t in times.items()}
    return {
        "space": SPACE.strip(),
        "points": len(space.points),
        "seconds": {str(w): t for w, t in times.items()},
        "median_seconds": {str(w): m for w, m in med.items()},
        "speedup_2_over_1": round(med[1] / med[2], 3),
    }
