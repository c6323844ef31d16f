"""cocotb bench of ``hw/vvau.sv`` against :func:`qnnflow.flows.ir.kernels_dw.vvau`.

Weights and thresholds come from the case (and its memory files). The input windows are the two
corner windows first (all-max, all-min: against the case's all-max and all-min weight channels
they reach both accumulator extremes), then random ones. A window is KK*CH elements in the
(ky, kx, c) order of ``hw/sliding_window.sv``, cut into beats of SIMD*PE elements; expected
outputs are range-checked against OUT_W, never wrapped. A frame is one window: NF*SF input
beats, NF = CH/PE output beats, NF*SF cycles (SF = KK/SIMD).
"""

from __future__ import annotations

from qnnflow.flows.ir import kernels_dw
from qnnflow.sim.mac_stimulus import mac_stimulus
from qnnflow.sim.streams import Sink, Source, Stimulus, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
NF, SF = P["CH"] // P["PE"], P["KK"] // P["SIMD"]


def ports(dut):
    return [Source(dut, width=P["SIMD"] * P["PE"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    return mac_stimulus(rng, CFG, kernels_dw.vvau, P["KK"] * P["CH"], P["SIMD"] * P["PE"], CFG["windows"], NF * SF)


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
