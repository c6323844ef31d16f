"""cocotb bench of ``hw/mvau.sv`` against :func:`qnnflow.flows.kernels.mvau`.

Weights and thresholds come from the case (and its memory files); input vectors are random.
A frame is one vector: SF = MW/SIMD input beats, NF = MH/PE output beats, NF*SF cycles.
"""

from __future__ import annotations

import cocotb
import numpy as np
from qnnflow.flows import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, Traffic, beats, load_config, run_case

CFG = load_config()
P = CFG["params"]
NF, SF = P["MH"] // P["PE"], P["MW"] // P["SIMD"]


def ports(dut):
    return [Source(dut, width=P["SIMD"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    n = CFG["vectors"]
    w = np.array(CFG["weights"])
    if P["IN_BIPOLAR"]:
        x = rng.choice(np.array([-1, 1]), size=(n, P["MW"]))
    else:
        lo, hi = CFG["x_range"]
        x = rng.integers(lo, hi + 1, size=(n, P["MW"]))
    thr = np.array(CFG["thresholds"]) if P["NUM_T"] else None
    y = kernels.mvau(
        x,
        w,
        thresholds=thr,
        out_offset=P["OUT_OFFSET"],
        x_bipolar=bool(P["IN_BIPOLAR"]),
        w_bipolar=bool(P["W_BIPOLAR"]),
    )
    return Stimulus(
        inputs=[[beats(x, P["IN_W"], P["SIMD"], bipolar=bool(P["IN_BIPOLAR"]))]],
        expect=[[beats(y, P["OUT_W"], P["PE"])]],
        beats_per_frame=NF,
        formula=NF * SF,
    )


@cocotb.test()
async def no_stalls(dut):
    await run_case(dut, Traffic.NO_STALLS, ports, stimulus)


@cocotb.test()
async def input_idles(dut):
    await run_case(dut, Traffic.INPUT_IDLES, ports, stimulus)


@cocotb.test()
async def backpressure(dut):
    await run_case(dut, Traffic.BACKPRESSURE, ports, stimulus)
