"""cocotb bench of ``hw/maxpool.sv`` against :func:`qnnflow.flows.ir.kernels.maxpool`.

A frame is one image: IFM_H*IFM_W*CF input beats at one per cycle, (IFM_H/K_H)*(IFM_W/K_W)*CF outputs
(K_H, K_W default K).
"""

from __future__ import annotations

from qnnflow.flows.ir import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]


def ports(dut):
    w = P["PE"] * P["ELEM_W"]
    return [Source(dut, width=w)], [Sink(dut, width=w)]


def stimulus(rng) -> Stimulus:
    lo, hi = kernels.value_range(P["ELEM_W"], bool(P["SIGNED"]))
    x = rng.integers(lo, hi + 1, size=(CFG["frames"], P["IFM_H"], P["IFM_W"], P["CH"]))
    y = kernels.maxpool(x, (P.get("K_H", P["K"]), P.get("K_W", P["K"])))
    cf = P["CH"] // P["PE"]
    return Stimulus(
        inputs=[[beats(x, P["ELEM_W"], P["PE"], signed=bool(P["SIGNED"]), port="input")]],
        expect=[[beats(y, P["ELEM_W"], P["PE"], signed=bool(P["SIGNED"]), port="expected output")]],
        beats_per_frame=y[0].size // P["PE"],
        formula=P["IFM_H"] * P["IFM_W"] * cf,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
