"""Runs the cocotb bench of every RTL module over its parameter sets (qnnflow.sim.cases).

Each case is one Verilator build (cached under build/sim_cache) and one simulation with three
traffic modes: no stalls, random input idles, random output backpressure. The bench checks the
outputs bit for bit against qnnflow.flows.kernels and, without stalls, the cycles per frame
against the module's formula. A failure names the seed; rerun one case with waves with
`python -m qnnflow.sim.runner <module>/<case> --waves`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qnnflow.sim import cases
from qnnflow.sim.runner import run_bench

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "sim_cache"


def _params():
    # the representative cases (slow) are the configurations of the closing figures
    for case in cases.all_cases() + cases.representative_cases():
        marks = [pytest.mark.rtl] + ([pytest.mark.slow] if case.slow else [])
        yield pytest.param(case, id=case.full_id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_bench(case: cases.Case) -> None:
    run = case.run(cache_dir=CACHE)
    assert run.tests == 3 and run.failures == 0
    # the frame period without stalls was checked by the bench; it must have been measured
    assert "cycles_per_frame" in run.report, f"{case.full_id}: no cycle measurement in {run.run_dir}"


@pytest.mark.rtl
def test_bench_catches_a_wrong_weight(tmp_path):
    """The scoreboard is not vacuous: one flipped weight bit in the memory file must fail the bench."""
    case = cases.by_id("mvau/pe4-simd8-wternary-a4u")  # no thresholds: every change shows
    extra, files = case.prepare(case.seed)
    words = files["weights.mem"].split()
    words[3] = f"{int(words[3], 16) ^ 0x1:0{len(words[3])}x}"
    files["weights.mem"] = "\n".join(words) + "\n"
    run = run_bench(
        case.module,
        case.params,
        seed=case.seed,
        config={**case.config, **extra},
        files=files,
        cache_dir=CACHE,
        check=False,
    )
    assert run.tests == 3 and run.failures == 3
