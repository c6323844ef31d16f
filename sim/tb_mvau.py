"""cocotb bench of ``hw/mvau.sv`` against :func:`qnnflow.flows.ir.kernels.mvau`.

Weights and thresholds come from the case (and its memory files). The input vectors are the two
corner vectors first (all-max, all-min: against the case's all-max and all-min weight rows they
reach both accumulator extremes), then random ones. Expected outputs are range-checked against
OUT_W, never wrapped, so an accumulator or output too narrow for the case cannot pass.
A frame is one vector: SF = MW/SIMD input beats, NF = MH/PE output beats, NF*SF cycles.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir import kernels
from qnnflow.sim.cases import corner_inputs
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
NF, SF = P["MH"] // P["PE"], P["MW"] // P["SIMD"]


def ports(dut):
    return [Source(dut, width=P["SIMD"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    n = CFG["vectors"]
    w = np.array(CFG["weights"])
    lo, hi = CFG["x_range"]
    if P["IN_BIPOLAR"]:
        x = rng.choice(np.array([-1, 1]), size=(n, P["MW"]))
    else:
        x = rng.integers(lo, hi + 1, size=(n, P["MW"]))
    x = np.concatenate([corner_inputs(P["MW"], (lo, hi)), x])
    thr = np.array(CFG["thresholds"]) if P["NUM_T"] else None
    y = kernels.mvau(
        x,
        w,
        thresholds=thr,
        out_offset=P["OUT_OFFSET"],
        x_bipolar=bool(P["IN_BIPOLAR"]),
        w_bipolar=bool(P["W_BIPOLAR"]),
    )
    x_beats = beats(x, P["IN_W"], P["SIMD"], signed=bool(P["IN_SIGNED"]), bipolar=bool(P["IN_BIPOLAR"]), port="input")
    out_signed = not P["NUM_T"] or P["OUT_OFFSET"] < 0  # without thresholds: the signed accumulator
    port = f"expected output (OUT_W {P['OUT_W']}, ACC_W {P['ACC_W']})"
    return Stimulus(
        inputs=[[x_beats]],
        expect=[[beats(y, P["OUT_W"], P["PE"], signed=out_signed, port=port)]],
        beats_per_frame=NF,
        formula=NF * SF,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
