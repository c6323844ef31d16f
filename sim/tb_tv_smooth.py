"""cocotb bench of ``hw/tv_smooth.sv`` against :func:`qnnflow.flows.ir.kernels_tv.tv_step`.

A frame is one IFM_H x IFM_W map of CH channels of codes in LO..HI. The input is the map's 3x3
window stream (stride 1, padding 1) as ``hw/sliding_window.sv`` sends it (:func:`kernels.sliding_window`),
with the padding positions filled with HI rather than a neutral value: the module must mask them by
position. The first frame is a checkerboard of LO and HI (every difference at its extreme, the
update at its largest), the others are random codes. Output: the smoothed map, CF beats per pixel;
9*CF input beats per pixel at one per cycle, so IFM_H*IFM_W*9*CF cycles per frame.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.kernels_tv import TVParams, tv_step
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests

CFG = load_config()
P = CFG["params"]


def ports(dut):
    w = P["PE"] * P["ELEM_W"]
    return [Source(dut, width=w)], [Sink(dut, width=w)]


def stimulus(rng) -> Stimulus:
    h, w, ch, pe, lo, hi = P["IFM_H"], P["IFM_W"], P["CH"], P["PE"], P["LO"], P["HI"]
    tv = TVParams(P["GAMMA_Q"], frac_bits=P["FRAC_BITS"], gamma_frac_bits=P["GAMMA_FRAC_BITS"])
    x = rng.integers(lo, hi + 1, size=(CFG["frames"], h, w, ch))
    yy, xx, cc = np.meshgrid(np.arange(h), np.arange(w), np.arange(ch), indexing="ij")
    x[0] = np.where((yy + xx + cc) % 2 == 0, lo, hi)
    y = tv_step(x, lo, hi, tv)
    win = kernels.sliding_window(x, 3, 1, 1, pad_value=hi)
    signed = bool(P["SIGNED"])
    cf = ch // pe
    return Stimulus(
        inputs=[[beats(win, P["ELEM_W"], pe, signed=signed, port="input")]],
        expect=[[beats(y, P["ELEM_W"], pe, signed=signed, port="expected output")]],
        beats_per_frame=h * w * cf,
        formula=h * w * 9 * cf,
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
