"""cocotb bench of ``hw/fifo.sv``: beats come out unchanged and in order, one per cycle.

Random backpressure fills the FIFO to DEPTH and holds it there; a frame is FRAME beats.
"""

from __future__ import annotations

import cocotb
from qnnflow.sim.streams import Sink, Source, Stimulus, Traffic, beats, load_config, run_case

CFG = load_config()
P = CFG["params"]
FRAME = 10


def ports(dut):
    return [Source(dut, width=P["DATA_W"])], [Sink(dut, width=P["DATA_W"])]


def stimulus(rng) -> Stimulus:
    x = rng.integers(0, 1 << P["DATA_W"], size=CFG["beats"])
    return Stimulus(
        inputs=[[beats(x, P["DATA_W"], 1, signed=False)]],
        expect=[[beats(x, P["DATA_W"], 1, signed=False)]],
        beats_per_frame=FRAME,
        formula=FRAME,
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
