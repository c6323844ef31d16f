"""cocotb bench of ``hw/thresholding.sv`` against :func:`qnnflow.flows.ir.kernels.thresholding`.

The pixels are an all-max and an all-min one first (channels 0 and 1 of the case have
thresholds at those extremes), then (``at_thresholds`` of the case) pixels whose every value is one
of its channel's thresholds and as many one below, then random ones; expected outputs are
range-checked, not wrapped.
A bipolar input (IN_BIPOLAR) is -1 / +1 in the reference and one bit, 0 meaning -1, on the port.
A frame is one pixel: CH channels in CF = CH/PE beats, one beat per cycle.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir import kernels
from qnnflow.sim.cases import corner_inputs
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]
CF = P["CH"] // P["PE"]


def ports(dut):
    return [Source(dut, width=P["PE"] * P["IN_W"])], [Sink(dut, width=P["PE"] * P["OUT_W"])]


def stimulus(rng) -> Stimulus:
    bipolar = bool(P.get("IN_BIPOLAR", 0))
    lo, hi = kernels.value_range(P["IN_W"], bool(P["IN_SIGNED"]), bipolar=bipolar)
    if bipolar:
        x = rng.choice(np.array([-1, 1]), size=(CFG["frames"], P["CH"]))
    else:
        x = rng.integers(lo, hi + 1, size=(CFG["frames"], P["CH"]))
    thr = np.array(CFG["thresholds"])
    x = np.concatenate([corner_inputs(P["CH"], (lo, hi)), _at_thresholds(rng, thr, lo, hi, bipolar), x])
    y = kernels.thresholding(x, thr, P["OUT_OFFSET"])
    return Stimulus(
        inputs=[[beats(x, P["IN_W"], P["PE"], signed=bool(P["IN_SIGNED"]), bipolar=bipolar, port="input")]],
        expect=[[beats(y, P["OUT_W"], P["PE"], signed=P["OUT_OFFSET"] < 0, port=f"expected (OUT_W {P['OUT_W']})")]],
        beats_per_frame=CF,
        formula=CF,
    )


def _at_thresholds(rng, thr: np.ndarray, lo: int, hi: int, bipolar: bool) -> np.ndarray:
    """CFG["at_thresholds"] pixels of values equal to one of the channel's thresholds (each drawn at
    random) and as many one below them, within the input's range; (0, CH) without."""
    n = CFG.get("at_thresholds", 0)
    pick = thr[np.arange(thr.shape[0]), rng.integers(0, thr.shape[1], size=(n, thr.shape[0]))]
    x = np.clip(np.concatenate([pick, pick - 1]), lo, hi)
    return np.where(x > 0, 1, -1) if bipolar else x


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
