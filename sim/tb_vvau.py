"""cocotb bench of ``hw/vvau.sv`` against :func:`qnnflow.flows.ir.kernels_dw.vvau`.

Weights and thresholds come from the case (and its memory files). The input windows are the two
corner windows first (all-max, all-min: against the case's all-max and all-min weight channels
they reach both accumulator extremes), then random ones. A window is KK*CH elements in the
(ky, kx, c) order of ``hw/sliding_window.sv``, cut into beats of SIMD*PE elements; expected
outputs are range-checked against OUT_W, never wrapped. A frame is one window: NF*SF input
beats, NF = CH/PE output beats, NF*SF cycles (SF = KK/SIMD).
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir import kernels_dw
from qnnflow.sim.cases import corner_inputs
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
NF, SF = P["CH"] // P["PE"], P["KK"] // P["SIMD"]


def ports(dut):
    return [Source(dut, width=P["SIMD"] * P["PE"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    n, size = CFG["windows"], P["KK"] * P["CH"]
    w = np.array(CFG["weights"])
    lo, hi = CFG["x_range"]
    if P["IN_BIPOLAR"]:
        x = rng.choice(np.array([-1, 1]), size=(n, size))
    else:
        x = rng.integers(lo, hi + 1, size=(n, size))
    x = np.concatenate([corner_inputs(size, (lo, hi)), x])
    thr = np.array(CFG["thresholds"]) if P["NUM_T"] else None
    y = kernels_dw.vvau(
        x,
        w,
        thresholds=thr,
        out_offset=P["OUT_OFFSET"],
        x_bipolar=bool(P["IN_BIPOLAR"]),
        w_bipolar=bool(P["W_BIPOLAR"]),
    )
    per_beat = P["SIMD"] * P["PE"]
    x_beats = beats(x, P["IN_W"], per_beat, signed=bool(P["IN_SIGNED"]), bipolar=bool(P["IN_BIPOLAR"]), port="input")
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
