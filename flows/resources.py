"""Analytical resource estimates of the hardware layers, for Lattice ECP5 and Xilinx 7-series.

These are first-order models (not synthesis results): multipliers as LUT logic (one LUT6 per
partial-product bit, XNOR-popcount one per product) or DSP / MULT18X18D slices when both operands
exceed 4 bits; adder trees and comparators one LUT per result bit; memories in LUT RAM when shallow
(< 128 words) else in block RAM (BRAM18 / DP16KD, best aspect ratio). ECP5 LUT4 counts use 2 LUT4
per LUT6 of logic and 16x1 bits per LUT4 of RAM. Synthesis (issue 6) replaces them with measured
numbers; these only steer folding.
"""

from __future__ import annotations

import math

from qonnx.core.datatype import DataType

FAMILIES = ("ecp5", "xc7")
KEYS = {"ecp5": ("LUT4", "FF", "DP16KD", "MULT18X18D"), "xc7": ("LUT6", "FF", "BRAM18", "DSP48")}
# (depth, width) aspect ratios of one 18 Kb block RAM (BRAM18 and DP16KD offer the same ones)
_BRAM_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def _bits(name: str) -> int:
    return int(DataType[name].bitwidth())


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, n))))


def memory(depth: int, width: int, family: str) -> tuple[int, int]:
    """(LUTs, block RAMs) for a depth x width memory."""
    if depth * width == 0:
        return 0, 0
    if depth < 128:
        per = 16 if family == "ecp5" else 64
        return width * math.ceil(depth / per), 0
    return 0, min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _BRAM_SHAPES)


def _pack(family: str, logic6: float, ff: float, ram_luts: int, brams: int, dsps: int) -> dict[str, int]:
    lut = math.ceil(logic6 * (2 if family == "ecp5" else 1)) + ram_luts
    k = KEYS[family]
    return {k[0]: int(lut), k[1]: int(math.ceil(ff)), k[2]: int(brams), k[3]: int(dsps)}


def estimate(layer, family: str) -> dict[str, int]:
    """Resources of one layer (flows/layers.py) on ``family`` ("ecp5" or "xc7")."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    op = layer.op_type
    g = layer.get
    if op == "MVAU":
        pe, simd, mh, mw = (int(g(k)) for k in ("PE", "SIMD", "MH", "MW"))
        ib, wb, ob, acc = (
            _bits(g(k)) for k in ("inputDataType", "weightDataType", "outputDataType", "accDataType")
        )
        xnor = bool(g("binaryXnorMode"))
        prods = pe * simd
        dsps = 0
        if xnor:
            mult = prods * 1.0
        elif wb <= 2 or ib <= 2:  # bipolar / ternary / 2-bit operand: a conditional add
            mult = prods * max(ib, wb)
        elif ib > 4 and wb > 4:
            mult, dsps = 0.0, prods
        else:
            mult = prods * ib * wb
        tree = pe * max(0, simd - 1) * (ib + wb + _clog2(simd))
        steps = 0 if g("noActivation") else (1 if g("outputDataType") == "BIPOLAR" else 2**ob - 1)
        cmp = pe * steps * math.ceil(acc / 2)
        wl, wbr = memory((mh // pe) * (mw // simd), pe * simd * wb, family)
        tl, tbr = memory(mh // pe, pe * steps * acc, family) if steps else (0, 0)
        # stage 0 registers the input slice and its weights (hw/mvau.sv); then dot, accumulator, output
        ff = 2 * simd * ib + pe * simd * wb + pe * acc * 2 + pe * ob + 2 * pe * simd * (1 if xnor else 2)
        return _pack(family, mult + tree + pe * acc + cmp + 40, ff, wl + tl, wbr + tbr, dsps)
    if op == "Thresholding":
        pe, c = int(g("PE")), int(g("NumChannels"))
        ib, ob = _bits(g("inputDataType")), _bits(g("outputDataType"))
        steps = 1 if g("outputDataType") == "BIPOLAR" else 2**ob - 1
        tl, tbr = memory(c // pe, pe * steps * (ib + 1), family)
        return _pack(family, pe * steps * math.ceil((ib + 1) / 2) + 20, pe * (ib + ob) * 2, tl, tbr, 0)
    if op == "SlidingWindow":
        simd, c, k = int(g("SIMD")), int(g("IFMChannels")), int(g("ConvKernelDim"))
        h, w = g("IFMDim")
        ib = _bits(g("inputDataType"))
        depth = k * (w + 2 * int(g("Pad"))) * (c // simd)
        ml, mbr = memory(depth, simd * ib, family)
        return _pack(family, simd * ib * 3 + 80, simd * ib * 2 + 64, ml, mbr, 0)
    if op == "MaxPool":
        pe, c, k = int(g("PE")), int(g("NumChannels")), int(g("PoolDim"))
        h, w = g("ImgDim")
        ib = _bits(g("inputDataType"))
        ml, mbr = memory((w // k) * (c // pe), pe * ib, family)
        return _pack(family, pe * ib * 2 + 30, pe * ib * 2 + 32, ml, mbr, 0)
    if op == "LabelSelect":
        ib, kk, pe = _bits(g("inputDataType")), int(g("K")), int(g("PE"))
        ob = _bits(g("outputDataType"))
        return _pack(family, kk * pe * (ib + ob) + 30, kk * (ib + ob) + pe * ib + 16, 0, 0, 0)
    if op in ("AddStreams", "DuplicateStreams"):
        pe = int(g("PE"))
        ib = _bits(g("inputDataType"))
        return _pack(family, pe * (ib + 1) + 8, pe * (ib + 1) * 2 + 4, 0, 0, 0)
    if op == "FIFO":
        ml, mbr = memory(int(g("depth")), int(g("width")), family)
        return _pack(family, 12, 2 * _clog2(int(g("depth"))) + int(g("width")), ml, mbr, 0)
    if op == "WidthConverter":
        w = max(int(g("inWidth")), int(g("outWidth")))
        return _pack(family, w + 10, 2 * w + 8, 0, 0, 0)
    raise ValueError(f"no resource model for {op}")
