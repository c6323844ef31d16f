"""cocotb bench of ``hw/fifo.sv``: beats come out unchanged and in order, one per cycle.

Random backpressure fills the FIFO to DEPTH and holds it there; a frame is FRAME beats.
"""

from __future__ import annotations

from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

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


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
