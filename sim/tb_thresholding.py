"""cocotb bench of ``hw/thresholding.sv`` against :func:`qnnflow.flows.kernels.thresholding`.

A frame is one pixel: CH channels in CF = CH/PE beats, one beat per cycle.
"""

from __future__ import annotations

import cocotb
import numpy as np
from qnnflow.flows import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, Traffic, beats, load_config, run_case

CFG = load_config()
P = CFG["params"]
CF = P["CH"] // P["PE"]


def ports(dut):
    return [Source(dut, width=P["PE"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    lo, hi = kernels.value_range(P["IN_W"], bool(P["IN_SIGNED"]))
    x = rng.integers(lo, hi + 1, size=(CFG["frames"], P["CH"]))
    y = kernels.thresholding(x, np.array(CFG["thresholds"]), P["OUT_OFFSET"])
    return Stimulus(
        inputs=[[beats(x, P["IN_W"], P["PE"])]],
        expect=[[beats(y, P["OUT_W"], P["PE"])]],
        beats_per_frame=CF,
        formula=CF,
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
