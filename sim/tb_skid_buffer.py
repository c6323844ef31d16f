"""cocotb bench of ``hw/skid_buffer.sv``: beats come out unchanged, in order, one per cycle."""

from __future__ import annotations

import cocotb
from qnnflow.sim.streams import Sink, Source, Stimulus, Traffic, beats, load_config, run_case

CFG = load_config()
P = CFG["params"]


def ports(dut):
    return [Source(dut, width=P["DATA_W"])], [Sink(dut, width=P["DATA_W"])]


def stimulus(rng) -> Stimulus:
    x = rng.integers(0, 1 << P["DATA_W"], size=CFG["frames"] * CFG["beats"])
    return Stimulus(
        inputs=[[beats(x, P["DATA_W"], 1, signed=False)]],
        expect=[[beats(x, P["DATA_W"], 1, signed=False)]],
        beats_per_frame=CFG["beats"],
        formula=CFG["beats"],
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
