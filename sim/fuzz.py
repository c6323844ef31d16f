"""The stitched simulation of one compiled fuzz case (:mod:`qnnflow.flows.compile.fuzz`): the fuzz
benchmark's (``qnnflow.bench.fuzz``) and the fuzz tests' last rung."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from qnnflow.flows.compile.fuzz import FuzzCase
from qnnflow.flows.compile.fuzz_check import Outcome, one_line, raised_at


def simulate_case(case: FuzzCase, outcome: Outcome, out_dir: Path | str) -> Outcome:
    """The outcome of a compiled case (in ``out_dir``) after the stitched batch simulation: exact when
    the RTL equals the dataflow graph on every frame and its decisions equal QONNX execution of the
    original; otherwise a bug. A case that did not compile is returned unchanged."""
    if outcome.kind != "exact":
        return outcome
    start = time.perf_counter()

    def done(kind: str, detail: str) -> Outcome:
        took = outcome.seconds + time.perf_counter() - start
        return dataclasses.replace(outcome, kind=kind, detail=detail, simulated=True, seconds=took)

    try:
        from qnnflow.flows.ir.execute import reference_outputs
        from qnnflow.flows.ir.reference import decisions
        from qnnflow.sim.stitch import simulate

        res = simulate(out_dir, inputs=case.inputs, log=lambda _m: None)
        if res["mismatches"]:
            return done("bug", f"simulation: {res['mismatches']} frames differ from the dataflow graph")
        hw = decisions(np.load(Path(res["results_dir"]) / "outputs.npy"))
        sw = decisions(reference_outputs(case.model, case.inputs))
    except Exception as err:  # noqa: BLE001 - a compiled graph that does not simulate is a bug
        return done("bug", f"simulation: {type(err).__name__}: {one_line(err)} at {raised_at(err)}")
    off = hw != sw
    if off.any():  # as the compile's verification: float64 decides where float32 and float64 disagree
        from qnnflow.flows.ir.reference import run_qonnx_double

        sw64 = decisions(run_qonnx_double(case.model, case.inputs))
        off &= hw != sw64
    bad = int(off.sum())
    if bad:
        return done("bug", f"simulation: {bad} of {len(hw)} decisions differ from QONNX execution")
    return done("exact", f"compiled and simulated: {len(hw)} frames bit-exact")
