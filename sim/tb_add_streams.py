"""cocotb bench of ``hw/add_streams.sv`` against :func:`qnnflow.flows.ir.kernels.add_streams`.

The two inputs are lanes 0 and 1 of the packed input bus, each with its own idles; a frame is
FRAME beats, one per cycle.
"""

from __future__ import annotations

from qnnflow.flows.ir import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
FRAME = 10


def ports(dut):
    return [Source(dut, width=P["PE"] * P["IN_W"], lanes=2)], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    signed = bool(P["IN_SIGNED"])
    lo, hi = kernels.value_range(P["IN_W"], signed)
    a = rng.integers(lo, hi + 1, size=(CFG["beats"], P["PE"]))
    b = rng.integers(lo, hi + 1, size=(CFG["beats"], P["PE"]))
    y = kernels.add_streams(a, b)
    return Stimulus(
        inputs=[[beats(v, P["IN_W"], P["PE"], signed=signed, port=f"input {k}") for k, v in (("a", a), ("b", b))]],
        expect=[[beats(y, P["OUT_W"], P["PE"], signed=signed, port=f"expected sum (OUT_W {P['OUT_W']})")]],
        beats_per_frame=FRAME,
        formula=FRAME,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
