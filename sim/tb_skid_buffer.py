"""cocotb bench of ``hw/skid_buffer.sv``: beats come out unchanged, in order, one per cycle."""

from __future__ import annotations

from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

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


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
