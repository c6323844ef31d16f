"""cocotb bench of ``hw/mvau.sv`` against :func:`qnnflow.flows.ir.kernels.mvau`.

Weights and thresholds come from the case (and its memory files). The input vectors are the two
corner vectors first (all-max, all-min: against the case's all-max and all-min weight rows they
reach both accumulator extremes), then random ones. Expected outputs are range-checked against
OUT_W, never wrapped, so an accumulator or output too narrow for the case cannot pass.
A frame is one vector: SF = MW/SIMD input beats, NF = MH/PE output beats, NF*SF cycles.
"""

from __future__ import annotations

from qnnflow.flows.ir import kernels
from qnnflow.sim.mac_stimulus import mac_stimulus
from qnnflow.sim.streams import Sink, Source, Stimulus, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
NF, SF = P["MH"] // P["PE"], P["MW"] // P["SIMD"]


def ports(dut):
    return [Source(dut, width=P["SIMD"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    return mac_stimulus(rng, CFG, kernels.mvau, P["MW"], P["SIMD"], CFG["vectors"], NF * SF)


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
