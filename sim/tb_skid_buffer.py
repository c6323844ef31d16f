"""cocotb bench of ``hw/skid_buffer.sv``: beats come out unchanged, in order, one per cycle."""

from __future__ import annotations

import cocotb
import numpy as np
from qnnflow.sim.streams import Bench, Sink, Source, Traffic, load_config, run_traffic

CFG = load_config()
P = CFG["params"]
FRAMES, BEATS = CFG["frames"], CFG["beats"]


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.rng = np.random.default_rng(CFG["seed"])
        self.data = [int(v) for v in self.rng.integers(0, 1 << P["DATA_W"], FRAMES * BEATS, dtype=np.uint64)]

    def bench(self) -> Bench:
        return Bench(
            self.dut, [Source(self.dut, width=P["DATA_W"])], [Sink(self.dut, width=P["DATA_W"])], seed=CFG["seed"]
        )

    async def run(self, traffic: Traffic) -> None:
        await run_traffic(
            self.dut,
            traffic,
            make_bench=self.bench,
            feed=lambda b: b.sources[0].send(self.data),
            expect=[[self.data]],
            beats_per_frame=BEATS,
            formula_cycles=BEATS,
            slack=0,
            seed=CFG["seed"],
            timeout=100,
        )


@cocotb.test()
async def no_stalls(dut):
    await TB(dut).run(Traffic.NO_STALLS)


@cocotb.test()
async def input_idles(dut):
    await TB(dut).run(Traffic.INPUT_IDLES)


@cocotb.test()
async def backpressure(dut):
    await TB(dut).run(Traffic.BACKPRESSURE)
