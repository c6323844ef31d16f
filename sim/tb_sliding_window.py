"""cocotb bench of ``hw/sliding_window.sv`` against :func:`qnnflow.flows.ir.kernels.sliding_window`.

A frame is one image; images follow each other back to back. Kernels may be non-square
(K_H x K_W, strides and padding per axis), down to the 1 x K kernel of a Conv1d over a 1-row image.
Without stalls the frame period is max(output beats, input beats) per image, plus at most
SLACK_FRACTION for the line buffer's row hand-over at image boundaries.
"""

from __future__ import annotations

from qnnflow.flows.ir import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
SLACK_FRACTION = 0.02
AXES = (("K", 3), ("STRIDE", 1), ("PAD", 0))  # the module's defaults


def ports(dut):
    w = P["SIMD"] * P["ELEM_W"]
    return [Source(dut, width=w)], [Sink(dut, width=w)]


def stimulus(rng) -> Stimulus:
    lo, hi = kernels.value_range(P["ELEM_W"], CFG["signed"])
    x = rng.integers(lo, hi + 1, size=(CFG["frames"], P["IFM_H"], P["IFM_W"], P["CH"]))
    # per axis (rows, columns): K_H / K_W etc. where the case gives them, else the square K, STRIDE, PAD
    k, stride, pad = ((P.get(f"{n}_H", P.get(n, d)), P.get(f"{n}_W", P.get(n, d))) for n, d in AXES)
    y = kernels.sliding_window(x, k, stride, pad, P.get("PAD_VALUE", 0))
    cf = P["CH"] // P["SIMD"]
    out_beats = y[0].size // P["SIMD"]
    in_beats = P["IFM_H"] * P["IFM_W"] * cf
    formula = max(out_beats, in_beats)
    return Stimulus(
        inputs=[[beats(x, P["ELEM_W"], P["SIMD"], signed=CFG["signed"], port="input")]],
        expect=[[beats(y, P["ELEM_W"], P["SIMD"], signed=CFG["signed"], port="expected window")]],
        beats_per_frame=out_beats,
        formula=formula,
        slack=SLACK_FRACTION * formula,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
