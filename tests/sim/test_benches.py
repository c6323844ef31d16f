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

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "sim_cache"


def _params():
    for case in cases.all_cases():
        marks = [pytest.mark.rtl] + ([pytest.mark.slow] if case.slow else [])
        yield pytest.param(case, id=case.full_id, marks=marks)


@pytest.mark.parametrize("case", _params())
def test_bench(case: cases.Case) -> None:
    run = case.run(cache_dir=CACHE)
    assert run.tests == 3 and run.failures == 0
    # the frame period without stalls was checked by the bench; it must have been measured
    assert "cycles_per_frame" in run.report, f"{case.full_id}: no cycle measurement in {run.run_dir}"
