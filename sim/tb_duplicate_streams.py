"""cocotb bench of ``hw/duplicate_streams.sv``: every output lane gets every input beat, in order.

Under backpressure each output lane stalls independently. A frame is FRAME beats, one per cycle.
"""

from __future__ import annotations

from qnnflow.flows.ir import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
FRAME = 10


def ports(dut):
    return [Source(dut, width=P["DATA_W"])], [Sink(dut, width=P["DATA_W"], lanes=P["NUM_OUT"])]


def stimulus(rng) -> Stimulus:
    x = rng.integers(0, 1 << P["DATA_W"], size=CFG["beats"])
    copies = kernels.duplicate_streams(x, P["NUM_OUT"])
    return Stimulus(
        inputs=[[beats(x, P["DATA_W"], 1, signed=False)]],
        expect=[[beats(c, P["DATA_W"], 1, signed=False) for c in copies]],
        beats_per_frame=FRAME,
        formula=FRAME,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
