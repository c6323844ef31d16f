"""The ``fuzz`` benchmark.

``fuzz``: :data:`FUZZ_CASES` random QONNX graphs of :mod:`qnnflow.flows.compile.fuzz` (seeds from
``--seed``) through :func:`qnnflow.flows.compile.driver.compile_model`, every step verified against QONNX
execution of the original; the first :data:`FUZZ_SIMULATED` that compile are also simulated in the
stitched Verilator batch simulation (:func:`qnnflow.sim.fuzz.simulate_case`). The result counts the outcomes --
compiled and exact / a clear error naming a node / a bug -- lists every bug with its seed, and
groups the clear errors by message (node names and numbers left out), so that a limit of the
compiler shows up as one line with its count. Then :data:`FUZZ_MUTATIONS` malformed variants
(:func:`qnnflow.flows.compile.fuzz.mutate`), each of which must compile or get a clear error. Work folders
go under ``--work``/fuzz and are removed after each case.

Registered in :mod:`qnnflow.bench`: ``python -m qnnflow.bench --only fuzz``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from qnnflow.bench.registry import benchmark
from qnnflow.flows.compile.fuzz import random_case
from qnnflow.flows.compile.fuzz_check import Outcome, run_case, tally
from qnnflow.flows.compile.fuzz_mutate import mutate
from qnnflow.sim.fuzz import simulate_case

FUZZ_CASES = 300
FUZZ_SIMULATED = 20
FUZZ_MUTATIONS = 200


def message_kind(detail: str) -> str:
    """A message with node and tensor names, numbers and value lists left out."""
    text = re.sub(r"\[[^\]]*\]", "[...]", detail)
    text = re.sub(r"\b[A-Za-z]+_[A-Za-z0-9_]+\b", "<name>", text)
    text = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", text)
    return text[:160]


@benchmark("fuzz")
def fuzz_bench(args: argparse.Namespace) -> dict:
    """300 random QONNX graphs compiled (20 simulated) and 200 mutated ones: compiled+exact / clear error / bug."""
    work = Path(args.work) / "fuzz"
    seeds = range(args.seed, args.seed + FUZZ_CASES)
    outcomes: list[Outcome] = []
    simulated = 0
    start = time.perf_counter()
    for seed in seeds:
        case = random_case(seed)
        out = work / f"seed{seed}"
        shutil.rmtree(out, ignore_errors=True)
        outcome = run_case(case, out)
        if outcome.kind == "exact" and simulated < FUZZ_SIMULATED:
            simulated += 1
            outcome = simulate_case(case, outcome, out)
        shutil.rmtree(out, ignore_errors=True)
        outcomes.append(outcome)
        print(f"[fuzz] seed {seed}: {outcome.kind}{' (simulated)' if outcome.simulated else ''}", flush=True)
    mutated = _mutations(work, args.seed)
    counts = tally(outcomes)
    sims = [o for o in outcomes if o.simulated]
    exact_features = Counter(f for o in outcomes if o.kind == "exact" for f in o.features)
    return {
        "cases": len(outcomes),
        "seeds": [seeds.start, seeds.stop - 1],
        "counts": {"compiled_and_exact": counts["exact"], "clear_error": counts["error"], "bug": counts["bug"]},
        "simulated": {
            "cases": len(sims),
            "exact": sum(o.kind == "exact" for o in sims),
            "bug": sum(o.kind == "bug" for o in sims),
            "frames_per_case": len(random_case(seeds.start).inputs),
        },
        "bugs": [o.as_dict() for o in outcomes if o.kind == "bug"],
        "bug_kinds": dict(Counter(message_kind(o.detail) for o in outcomes if o.kind == "bug").most_common()),
        "error_kinds": dict(Counter(message_kind(o.detail) for o in outcomes if o.kind == "error").most_common()),
        "features_in_exact_cases": dict(exact_features.most_common()),
        "mutated": {
            "cases": len(mutated),
            "counts": tally([o for o, _ in mutated]),
            "bugs": [{**o.as_dict(), "mutation": what} for o, what in mutated if o.kind == "bug"],
        },
        "seconds": round(time.perf_counter() - start, 1),
    }


def _mutations(work: Path, seed: int) -> list[tuple[Outcome, str]]:
    """:data:`FUZZ_MUTATIONS` fuzz graphs with one random change each (:func:`mutate`): each must
    compile or get a ValueError / FlowError ("error"); anything else is a bug."""
    results = []
    for k in range(FUZZ_MUTATIONS):
        rng = np.random.default_rng(seed * 100_003 + 1000 + k)
        case, what = mutate(random_case(int(rng.integers(0, 1000)), n_inputs=5), rng)
        out = work / f"mutated{k}"
        shutil.rmtree(out, ignore_errors=True)
        outcome = run_case(case, out, malformed=True)
        shutil.rmtree(out, ignore_errors=True)
        results.append((outcome, what))
        print(f"[fuzz] mutation {k} ({what}): {outcome.kind}", flush=True)
    return results
