"""cocotb bench of ``hw/width_converter.sv``: the bit stream is unchanged, LSBs first.

A frame is one word of max(IN_W, OUT_W) bits: R beats on the narrow side, one on the wide side,
so R cycles per frame without stalls.
"""

from __future__ import annotations

from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
NARROW = min(P["IN_W"], P["OUT_W"])
R = max(P["IN_W"], P["OUT_W"]) // NARROW


def ports(dut):
    return [Source(dut, width=P["IN_W"])], [Sink(dut, width=P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    # the stream as narrow elements; both sides pack them, element 0 in the LSBs
    x = rng.integers(0, 1 << NARROW, size=CFG["words"] * R)
    ins = beats(x, NARROW, P["IN_W"] // NARROW, signed=False)
    outs = beats(x, NARROW, P["OUT_W"] // NARROW, signed=False)
    return Stimulus(
        inputs=[[ins]],
        expect=[[outs]],
        beats_per_frame=1 if P["OUT_W"] >= P["IN_W"] else R,
        formula=R,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
