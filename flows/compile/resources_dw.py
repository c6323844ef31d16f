"""Resource estimate of the depthwise MVAU (``hw/vvau.sv``), in the terms of flows/compile/resources.py.

hw/vvau.sv is hw/mvau.sv's datapath without the input buffer (each window beat is used once): the
same products, adder tree and threshold comparators, per PE * SIMD products of a beat of PE
channels; the NF partial sums of a window live in an NF-word memory read asynchronously (LUT RAM),
a register when NF = 1. The per-unit costs are hw/mvau.sv's, except on ECP5 two refitted against
Yosys 0.70 on ten hw/vvau.sv configurations (CH 4..64, PE 1..CH, SIMD 1..9, 1..8-bit, 0..15
thresholds, XNOR; the two depthwise layers of tests/flows/test_depthwise.py's separable CNN among
them): a threshold bit costs 1.3 LUT4 (the MVAU's 2.8 counts 1.5 more) and the product tree 0.7 of
the MVAU's. ECP5 LUT4 then within 9 % of Yosys on nine (in sample), +28 % on the XNOR one (SIMD 9);
xc7 LUT6 (the MVAU's costs) within 26 % on seven, +39 % and +51 % on two with 15 thresholds, 2.7x on
the XNOR one (81 LUT6); FFs up to 50 % high where many threshold or weight-register bits are
constant. Out of sample, on six foldings of the test CNN's two depthwise layers: ECP5 LUT4 +1 to
+15 % on four, +40 % at PE = CH = 8, SIMD 3 with 15 thresholds (constant thresholds compare
cheaper) and +55 % on the XNOR one (99 LUT4). The estimate steers folding; the implementation
reports measured figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from qnnflow.flows.compile.resources import _COST, _clog2, _skid_ffs, _Tally, memory

# ECP5 costs of hw/vvau.sv that differ from hw/mvau.sv's (module docstring): per threshold bit, and
# the factor on the products and their adder tree
_VVAU_ECP5 = {"cmp": 1.3, "products": 0.7}


def vvau_tally(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    cmp, scale = (_VVAU_ECP5["cmp"], _VVAU_ECP5["products"]) if family == "ecp5" else (c["mvau_cmp"], 1.0)
    pe, simd, iw, ww, acc, nt, ow = (int(p[k]) for k in ("PE", "SIMD", "IN_W", "W_W", "ACC_W", "NUM_T", "OUT_W"))
    nf, sf = int(p["CH"]) // pe, int(p["KK"]) // simd
    xnor = bool(p["IN_BIPOLAR"]) and bool(p["W_BIPOLAR"])
    use_mul = not p["IN_BIPOLAR"] and not p["W_BIPOLAR"] and iw > 4 and ww > 4
    ng = math.ceil(simd / 8) if simd > 8 else 0  # registered partial sums of 8 products (GROUP)
    counters = _clog2(nf) + _clog2(sf) + _clog2(nf * sf)
    t = _Tally()
    t.luts = c["mvau_base"] + c["mvau_counter"] * counters + c["mvau_split"] * pe * ng * acc
    t.luts += c.get("mvau_acc", 0) * pe * acc + c["mvau_out"] * pe * ow + cmp * pe * nt * acc
    if xnor:
        t.luts += scale * c["mvau_xnor"] * pe * simd
    elif use_mul:
        t.dsps = pe * simd
        t.luts += scale * c["mvau_dsp_tree"] * pe * simd * acc
    else:
        pps = 1 if (p["IN_BIPOLAR"] or p["W_BIPOLAR"]) else min(iw, ww)
        # the products of a beat and the accumulator enter one adder per channel
        t.luts += scale * c["mvau_tree"] * pe * (simd * pps + 1) * acc
    # registers: control and valid pipeline, the beat and its weights (stage 0), the weight read
    # register, partial sums, dot products, result, output slice
    t.ffs = 7 + counters + simd * pe * iw + 2 * pe * simd * ww + pe * ng * acc + (3 if ng else 0)
    t.ffs += 2 * pe * acc + 2 * _clog2(nf) + _skid_ffs(pe * ow)
    if nf * sf > 1:
        w = t.add(memory(nf * sf, pe * simd * ww, family, rom=True))
        if w.kind == "logic":
            deep = pe * simd * ww * nf * sf if nf * sf > 64 else 0
            t.luts += (c["mvau_wrom"] - 1) * w.luts + c["mvau_wrom_deep"] * deep
    else:
        t.ffs -= pe * simd * ww  # one word: constants
    if nt:
        t.ffs += pe * nt * acc
        if nf > 1:
            thr = t.add(memory(nf, pe * nt * acc, family, rom=True))
            if thr.kind == "logic":
                t.ffs -= 0.2 * pe * nt * acc
        else:
            t.ffs -= pe * nt * acc
    if nf > 1:  # the partial sums of the NF channel folds of a window
        t.add(memory(nf, pe * acc, family, rom=False, sync_read=False))
    return t
