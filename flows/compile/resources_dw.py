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

from collections.abc import Mapping

from qnnflow.flows.compile.resources import _COST, _Mac, _mac, _tag_copies, _Tally
from qnnflow.flows.compile.resources_memory import _clog2, memory

# ECP5 costs of hw/vvau.sv that differ from hw/mvau.sv's (module docstring): per threshold bit, and
# the factor on the products and their adder tree
_VVAU_ECP5 = {"cmp": 1.3, "products": 0.7}


def _costs(family: str) -> Mapping[str, float]:
    """The per-unit costs of hw/vvau.sv: hw/mvau.sv's, with the ECP5 ones refitted."""
    c = _COST[family]
    if family != "ecp5":
        return c
    products = {k: _VVAU_ECP5["products"] * c[k] for k in ("mvau_xnor", "mvau_dsp_tree", "mvau_tree")}
    return {**c, "mvau_cmp": _VVAU_ECP5["cmp"], **products}


def vvau_tally(p: Mapping[str, int], family: str) -> _Tally:
    c = _costs(family)
    m = _Mac.of(p, "CH", "KK")
    # the products of a beat and the accumulator enter one adder per channel
    tree = c["mvau_tree"] * m.pe * (m.simd * m.pps + 1) * m.acc
    # own registers: the beat of PE channels, and the result per channel fold
    t = _mac(m, c, family, tree=tree, own_ffs=m.simd * m.pe * m.iw + 2 * _clog2(m.nf) + _tag_copies(m.pe), thr_ffs=0)
    if m.nf > 1:  # the partial sums of the NF channel folds of a window
        t.add(memory(m.nf, m.pe * m.acc, family, rom=False, sync_read=False))
    return t
