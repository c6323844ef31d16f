"""cocotb bench of ``hw/label_select.sv`` against :func:`qnnflow.flows.kernels.label_select`.

A frame is NUM values in NUM/PE beats and gives one index. Values are drawn from a narrow range
so that ties (which must go to the lowest index) are common.
"""

from __future__ import annotations

from qnnflow.flows import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]


def ports(dut):
    return [Source(dut, width=P["PE"] * P["ELEM_W"])], [Sink(dut, width=P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    lo, hi = kernels.value_range(P["ELEM_W"], bool(P["SIGNED"]))
    x = rng.integers(lo, hi + 1, size=(CFG["frames"], P["NUM"]))
    x[::3] = rng.integers(max(lo, hi - 2), hi + 1, size=x[::3].shape)  # many ties at the top
    y = kernels.label_select(x, 1)
    return Stimulus(
        inputs=[[beats(x, P["ELEM_W"], P["PE"], signed=bool(P["SIGNED"]), port="input")]],
        expect=[[beats(y, P["OUT_W"], 1, signed=False, port=f"expected index (OUT_W {P['OUT_W']})")]],
        beats_per_frame=1,
        formula=P["NUM"] // P["PE"],
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
