"""The bench cases of every ``hw/`` module (:func:`table`; :func:`qnnflow.sim.cases.all_cases`), one
function per module or kind of case: generated only as valid combinations, with readable ids."""

from __future__ import annotations

from qnnflow.sim.cases import (
    Case,
    label_select_map_case,
    mvau_case,
    thresholding_case,
    tv_smooth_case,
    vvau_case,
)


def _mvau() -> list[Case]:
    """mvau: bipolar / ternary / 2-, 4-, 8-bit, signed and unsigned; PE and SIMD at 1, middle, full.
    One table of the module's cases: it reads best whole (a case per line), hence over 60 lines."""
    return [
        mvau_case("pe1-simd1-w2a2-thr", mw=8, mh=4, pe=1, simd=1, in_w=2, w_w=2, num_t=3),
        mvau_case("pe2-simd4-w2a2-thr", mw=16, mh=8, pe=2, simd=4, in_w=2, w_w=2, num_t=3, vectors=16),
        mvau_case(
            "pe8-simd16-w1a1-xnor",
            mw=16,
            mh=8,
            pe=8,
            simd=16,
            in_w=1,
            in_bipolar=True,
            w_w=1,
            w_bipolar=True,
            num_t=1,
            vectors=40,
        ),
        mvau_case("pe4-simd8-wternary-a4u", mw=32, mh=8, pe=4, simd=8, in_w=4, w_w=2, ternary=True, vectors=20),
        mvau_case("pe2-simd2-w8a8s", mw=8, mh=4, pe=2, simd=2, in_w=8, in_signed=True, w_w=8, vectors=16),
        mvau_case(
            "pe4-simd4-w1a2-thr-off",
            mw=16,
            mh=8,
            pe=4,
            simd=4,
            in_w=2,
            w_w=1,
            w_bipolar=True,
            num_t=3,
            out_offset=-1,
            vectors=16,
        ),
        mvau_case(
            "pe2-simd8-w4ua4s-thr15",
            mw=16,
            mh=4,
            pe=2,
            simd=8,
            in_w=4,
            in_signed=True,
            w_w=4,
            w_signed=False,
            num_t=15,
            out_offset=-8,
            vectors=16,
        ),
        mvau_case("pe4-simd2-w2a1b", mw=8, mh=4, pe=4, simd=2, in_w=1, in_bipolar=True, w_w=2, vectors=16),
        # masked sums (hw/mac_pipeline.sv MSUM): bipolar weights on 8-bit signed inputs (2*sum - sum
        # of x); 2-bit signed weights over their whole range, -2 included, on 5-bit unsigned inputs
        mvau_case("pe4-simd8-w1a8s-msum", mw=32, mh=8, pe=4, simd=8, in_w=8, in_signed=True, w_w=1, w_bipolar=True,
                  vectors=16),  # fmt: skip
        mvau_case("pe4-simd4-w2sa5-msum", mw=16, mh=8, pe=4, simd=4, in_w=5, w_w=2, vectors=16),
        # partial products as tree terms: along a signed weight's 3 bits (its sign bit negated), and
        # along a signed input's 3 bits under 8-bit signed weights
        mvau_case("pe2-simd4-w3sa6s-split", mw=16, mh=4, pe=2, simd=4, in_w=6, in_signed=True, w_w=3, vectors=16),
        mvau_case("pe2-simd3-w8sa3s-split", mw=9, mh=4, pe=2, simd=3, in_w=3, in_signed=True, w_w=8, vectors=16),
        # weights read through banks (W_BANK_D): 24 words in 6 banks of 4; 21 words in banks of 8 (the
        # last holds 5); 8 words in one bank deeper than that; SF = 1 (a fold per cycle) over 4 banks
        mvau_case("pe2-simd2-w2a2-bank4", mw=12, mh=8, pe=2, simd=2, in_w=2, w_w=2, num_t=3, w_bank_d=4),
        mvau_case("pe1-simd3-w3sa4-bank8-tail", mw=21, mh=3, pe=1, simd=3, in_w=4, w_w=3, w_bank_d=8, slow=True),
        mvau_case(
            "pe4-simd4-w2a2-bank64-one", mw=16, mh=8, pe=4, simd=4, in_w=2, w_w=2, num_t=3, w_bank_d=64, slow=True
        ),
        mvau_case("pe2-simd8-w1a1-xnor-sf1-bank2", mw=8, mh=16, pe=2, simd=8, in_w=1, in_bipolar=True, w_w=1,
                  w_bipolar=True, num_t=1, w_bank_d=2),  # fmt: skip
        # more than four banks: their selection in registered 4:1 levels (hw/mvau.sv D_SEL), the
        # slice and the input buffer's read delayed as much: 64 banks (two registered levels), and
        # 5 banks of one fold (no input buffer)
        mvau_case("pe1-simd1-w2a2-bank4-x64", mw=16, mh=16, pe=1, simd=1, in_w=2, w_w=2, num_t=3, w_bank_d=4),
        mvau_case("pe2-simd2-w2a2-nf1-bank4-x5", mw=40, mh=2, pe=2, simd=2, in_w=2, w_w=2, w_bank_d=4, vectors=16),
        # the count by binary search (hw/threshold_search.sv): 255 thresholds of 8-bit signed
        # accumulators over 4 folds; 20 (not 2^L - 1) over 2 folds, a fold per cycle (SF = 1: the
        # credits must cover the deeper pipeline); 63 on accumulators of -24..12, so runs of equal
        # thresholds and every accumulator on a threshold, 3 folds of one lane
        mvau_case(
            "pe2-simd4-w2a8s-thr255-search", mw=16, mh=8, pe=2, simd=4, in_w=8, in_signed=True, w_w=2, num_t=255,
            out_offset=-128, vectors=16, search=True,
        ),  # fmt: skip
        mvau_case("pe4-simd8-w4a4-thr20-search-sf1", mw=8, mh=8, pe=4, simd=8, in_w=4, w_w=4, num_t=20, search=True),
        mvau_case(
            "pe1-simd1-w2a2-thr63-search", mw=4, mh=3, pe=1, simd=1, in_w=2, w_w=2, num_t=63, search=True, slow=True
        ),
        # thresholds in block RAM (THR_BRAM), read through a second register: 1 threshold over 16
        # folds of one lane, a fold per cycle (SF = 1: the credits cover the longer pipeline); 3
        # thresholds over 4 folds of 4 lanes
        mvau_case("pe1-simd8-w1a1-xnor-sf1-thrbram", mw=8, mh=16, pe=1, simd=8, in_w=1, in_bipolar=True, w_w=1,
                  w_bipolar=True, num_t=1, thr_bram=True, vectors=16),  # fmt: skip
        mvau_case("pe4-simd4-w2a2-thrbram", mw=16, mh=16, pe=4, simd=4, in_w=2, w_w=2, num_t=3, thr_bram=True),
        mvau_case("pe8-simd8-w2a2-thr-big", mw=64, mh=32, pe=8, simd=8, in_w=2, w_w=2, num_t=3, vectors=8, slow=True),
        mvau_case(
            "pe1-simd32-w1a1-xnor-big",
            mw=64,
            mh=16,
            pe=1,
            simd=32,
            in_w=1,
            in_bipolar=True,
            w_w=1,
            w_bipolar=True,
            num_t=1,
            vectors=8,
            slow=True,
        ),
    ]


def _vvau() -> list[Case]:
    """vvau (depthwise): bipolar / ternary / 2-, 4-, 8-bit; PE at 1, middle, CH; SIMD (needs PE = CH)
    at 1, middle, KK, and above the adder-tree group of 8 (two registered halves)"""
    return [
        vvau_case("pe1-simd1-ch4-k3-w2a2-thr", ch=4, kk=9, pe=1, simd=1, in_w=2, w_w=2, num_t=3),
        # thresholds in block RAM (THR_BRAM): 8 channels of one lane, each its own fold
        vvau_case("pe1-simd1-ch8-k3-w2a2-thrbram", ch=8, kk=9, pe=1, simd=1, in_w=2, w_w=2, num_t=3, thr_bram=True),
        vvau_case(
            "pe2-simd1-ch8-k3-w4a4s-thr15-off",
            ch=8, kk=9, pe=2, simd=1, in_w=4, in_signed=True, w_w=4, num_t=15, out_offset=-8, windows=16,
        ),  # fmt: skip
        vvau_case(
            "pe4-simd3-ch4-k3-w1a1-xnor",
            ch=4, kk=9, pe=4, simd=3, in_w=1, in_bipolar=True, w_w=1, w_bipolar=True, num_t=1, windows=40,
        ),  # fmt: skip
        vvau_case("pe3-simd9-ch3-k3-wternary-a4u", ch=3, kk=9, pe=3, simd=9, in_w=4, w_w=2, ternary=True, windows=24),
        vvau_case(
            "pe2-simd2-ch2-k2-w8a8s", ch=2, kk=4, pe=2, simd=2, in_w=8, in_signed=True, w_w=8, windows=16
        ),  # fmt: skip
        vvau_case(
            "pe8-simd1-ch16-k5-w1a2-thr-off",
            ch=16, kk=25, pe=8, simd=1, in_w=2, w_w=1, w_bipolar=True, num_t=3, out_offset=-1, windows=10,
        ),  # fmt: skip
        vvau_case("pe4-simd1-ch8-k2-w2a1b", ch=8, kk=4, pe=4, simd=1, in_w=1, in_bipolar=True, w_w=2, windows=16),
        vvau_case(
            "pe2-simd1-ch4-k3-w4a4s-thr255-search",
            ch=4, kk=9, pe=2, simd=1, in_w=4, in_signed=True, w_w=4, num_t=255, out_offset=-128, windows=12,
            search=True,
        ),  # fmt: skip
        vvau_case(
            "pe2-simd25-ch2-k5-w4ua8u-thr7",
            ch=2, kk=25, pe=2, simd=25, in_w=8, w_w=4, w_signed=False, num_t=7, windows=16,
        ),  # fmt: skip
    ]


def _thresholding() -> list[Case]:
    """thresholding"""
    return [
        thresholding_case("pe1-ch4-a4u-t3", ch=4, pe=1, in_w=4, in_signed=False, num_t=3),
        thresholding_case("pe2-ch8-a8s-t15-off", ch=8, pe=2, in_w=8, in_signed=True, num_t=15, out_offset=-8),
        thresholding_case("pe4-ch4-a6s-t1", ch=4, pe=4, in_w=6, in_signed=True, num_t=1),
        # 16-bit values: the compares split into two 8/9-bit halves; thresholds on byte edges, and
        # pixels at them and one below
        thresholding_case("pe2-ch4-a16s-t3-edges", ch=4, pe=2, in_w=16, in_signed=True, num_t=3, frames=40,
                          at_thresholds=16, byte_edges=True),  # fmt: skip
        # bipolar input (a BIPOLAR stream: one bit, 0 meaning -1)
        thresholding_case("pe2-ch6-a1b-t1", ch=6, pe=2, in_w=1, in_signed=False, in_bipolar=True, num_t=1, frames=40),
        thresholding_case(
            "pe1-ch4-a1b-t3-off", ch=4, pe=1, in_w=1, in_signed=False, in_bipolar=True, num_t=3, out_offset=-1
        ),
        thresholding_case("pe8-ch8-a1b-t2", ch=8, pe=8, in_w=1, in_signed=False, in_bipolar=True, num_t=2, frames=40),
    ]


def _thresholding_search() -> list[Case]:
    """thresholding by binary search (THR_SEARCH, hw/threshold_search.sv): 255 thresholds of a signed
    8-bit input (8 stages, runs of equal thresholds among them and clipped ones at both ends); 20, not
    of the form 2^L - 1 (stages whose upper candidates are beyond the last threshold); 31, which is;
    a bipolar input with 16 thresholds in -1..2 (mostly equal ones); a memory split in banks. PE > 1
    lanes with channels of their own, several folds; inputs equal to a threshold and one below
    (``at_thresholds``)."""
    return [
        thresholding_case(
            "pe2-ch8-a8s-t255-search", ch=8, pe=2, in_w=8, in_signed=True, num_t=255, out_offset=-128, frames=24,
            search=True, at_thresholds=8,
        ),  # fmt: skip
        thresholding_case(
            "pe3-ch6-a6u-t20-search", ch=6, pe=3, in_w=6, in_signed=False, num_t=20, frames=30, search=True, slow=True,
            at_thresholds=8,
        ),  # fmt: skip
        thresholding_case(
            "pe1-ch3-a5s-t31-search-off", ch=3, pe=1, in_w=5, in_signed=True, num_t=31, out_offset=-16, frames=30,
            search=True, at_thresholds=8, slow=True,
        ),  # fmt: skip
        thresholding_case(
            "pe2-ch4-a1b-t16-search", ch=4, pe=2, in_w=1, in_signed=False, in_bipolar=True, num_t=16, frames=30,
            search=True, at_thresholds=4, slow=True,
        ),  # fmt: skip
        # 24 folds: the last stage's 3072 words of 9 bits in two banks (2048 and 1024 words)
        thresholding_case(
            "pe1-ch24-a8s-t255-search-banks", ch=24, pe=1, in_w=8, in_signed=True, num_t=255, frames=8,
            search=True, at_thresholds=4,
        ),  # fmt: skip
    ]


def _sliding_window() -> list[Case]:
    """sliding_window (square kernels; STRIDE <= K)"""
    return [
        Case(
            "sliding_window",
            "k3-s1-p1-ch2-simd1",
            dict(IFM_H=6, IFM_W=6, CH=2, SIMD=1, ELEM_W=4, K=3, STRIDE=1, PAD=1),
            {"frames": 4, "signed": False},
        ),
        Case(
            "sliding_window",
            "k3-s1-p0-ch4-simd4",
            dict(IFM_H=5, IFM_W=5, CH=4, SIMD=4, ELEM_W=2, K=3, STRIDE=1, PAD=0),
            {"frames": 6, "signed": False},
        ),
        Case(
            "sliding_window",
            "k2-s2-p0-ch4-simd2",
            dict(IFM_H=6, IFM_W=7, CH=4, SIMD=2, ELEM_W=8, K=2, STRIDE=2, PAD=0),
            {"frames": 5, "signed": True},
        ),
        Case(
            "sliding_window",
            "k3-s2-p1-ch1-padm1",
            dict(IFM_H=7, IFM_W=6, CH=1, SIMD=1, ELEM_W=3, K=3, STRIDE=2, PAD=1, PAD_VALUE=-1),
            {"frames": 5, "signed": True},
        ),
        # pointwise windows: one beat per output row (the row permission is then combinational)
        # and three (the fewest for which it is prepared ahead); reader and writer equally fast
        Case(
            "sliding_window",
            "k1-s1-p0-w1-one-beat-rows",
            dict(IFM_H=5, IFM_W=1, CH=2, SIMD=2, ELEM_W=4, K=1, STRIDE=1, PAD=0),
            {"frames": 6, "signed": False},
        ),
        # two beats per output row: the fewest for which the rows' slot addresses are prepared ahead
        Case(
            "sliding_window",
            "k1-s1-p0-w2-two-beat-rows",
            dict(IFM_H=3, IFM_W=2, CH=1, SIMD=1, ELEM_W=4, K=1, STRIDE=1, PAD=0),
            {"frames": 8, "signed": False},
        ),
        Case(
            "sliding_window",
            "k1-s1-p0-w3-three-beat-rows",
            dict(IFM_H=4, IFM_W=3, CH=1, SIMD=1, ELEM_W=4, K=1, STRIDE=1, PAD=0),
            {"frames": 6, "signed": False},
        ),
    ]


def _sliding_window_non_square() -> list[Case]:
    """sliding_window, non-square: Conv1d (a 1-row image, kernel 1 x K, stride and padding along W
    only) and a 2 x 3 kernel with strides and padding per axis"""
    return [
        Case(
            "sliding_window",
            "conv1d-k3-s1-p1-ch4-simd2",
            dict(IFM_H=1, IFM_W=16, CH=4, SIMD=2, ELEM_W=4, K_H=1, K_W=3, STRIDE_H=1, STRIDE_W=1, PAD_H=0, PAD_W=1),
            {"frames": 6, "signed": False},
        ),
        Case(
            "sliding_window",
            "conv1d-k5-s2-p2-ch1-padm1",
            dict(IFM_H=1, IFM_W=21, CH=1, SIMD=1, ELEM_W=3, K_H=1, K_W=5, STRIDE_W=2, PAD_H=0, PAD_W=2, PAD_VALUE=-1),
            {"frames": 6, "signed": True},
        ),
        Case(
            "sliding_window",
            "conv1d-k4-s4-p0-ch3-simd3",
            dict(IFM_H=1, IFM_W=12, CH=3, SIMD=3, ELEM_W=8, K_H=1, K_W=4, STRIDE_W=4, PAD_H=0, PAD_W=0),
            {"frames": 8, "signed": True},
        ),
        Case(
            "sliding_window",
            "k2x3-s1x2-p1x1-ch2",
            dict(IFM_H=5, IFM_W=7, CH=2, SIMD=1, ELEM_W=2, K_H=2, K_W=3, STRIDE_H=1, STRIDE_W=2, PAD_H=1, PAD_W=1),
            {"frames": 4, "signed": False},
        ),
    ]


def _maxpool() -> list[Case]:
    """maxpool"""
    return [
        Case("maxpool", "k2-ch4-pe2-u4", dict(IFM_H=4, IFM_W=6, CH=4, PE=2, ELEM_W=4, SIGNED=0, K=2), {"frames": 8}),
        Case(
            "maxpool", "k3-ch2-pe1-s8-rem", dict(IFM_H=7, IFM_W=8, CH=2, PE=1, ELEM_W=8, SIGNED=1, K=3), {"frames": 5}
        ),
        Case("maxpool", "k2-ch3-pe3-s2", dict(IFM_H=4, IFM_W=4, CH=3, PE=3, ELEM_W=2, SIGNED=1, K=2), {"frames": 10}),
        # 1-D pooling (a Conv1d network's MaxPool1d, H = 1) and a non-square window with a remainder
        Case(
            "maxpool", "k1x3-h1-ch4-pe2-u3", dict(IFM_H=1, IFM_W=13, CH=4, PE=2, ELEM_W=3, SIGNED=0, K=3, K_H=1, K_W=3),
            {"frames": 6},
        ),  # fmt: skip
        Case(
            "maxpool", "k2x3-ch2-pe1-s4", dict(IFM_H=5, IFM_W=7, CH=2, PE=1, ELEM_W=4, SIGNED=1, K=2, K_H=2, K_W=3),
            {"frames": 4},
        ),  # fmt: skip
    ]


def _label_select() -> list[Case]:
    """label_select"""
    return [
        Case("label_select", "n10-pe1-s8", dict(NUM=10, PE=1, ELEM_W=8, SIGNED=1, OUT_W=4), {"frames": 40}),
        Case("label_select", "n12-pe4-u3", dict(NUM=12, PE=4, ELEM_W=3, SIGNED=0, OUT_W=4), {"frames": 60}),
        Case("label_select", "n8-pe8-s2", dict(NUM=8, PE=8, ELEM_W=2, SIGNED=1, OUT_W=3), {"frames": 80}),
        # 14 and 16-bit values: the best so far compared as two halves (greater_split)
        Case("label_select", "n10-pe2-s16", dict(NUM=10, PE=2, ELEM_W=16, SIGNED=1, OUT_W=4), {"frames": 90}),
        Case("label_select", "n12-pe3-u14", dict(NUM=12, PE=3, ELEM_W=14, SIGNED=0, OUT_W=4), {"frames": 90},
             slow=True),
        # per-class maps: multipliers and offsets; offsets with a shift (one scale for all classes);
        # negative multipliers only (PE = NUM); -1 for all with a shift; 16-bit values to 40+ bits
        label_select_map_case("n10-pe1-s6-mul5-off8", num=10, pe=1, elem_w=6, signed=True, mul_w=5, off_w=8),
        label_select_map_case("n12-pe4-u4-off9-sh3", num=12, pe=4, elem_w=4, signed=False, off_w=9, shift=3),
        label_select_map_case(
            "n8-pe8-s3-mulneg", num=8, pe=8, elem_w=3, signed=True, mul=[-3, -1, -2, -4, -1, -3, -2, -1]
        ),
        label_select_map_case(
            "n10-pe5-s5-neg1-off7-sh2", num=10, pe=5, elem_w=5, signed=True, mul=[-1] * 10, off_w=7, shift=2
        ),
        label_select_map_case(
            "n6-pe2-s16-mul24-off32", num=6, pe=2, elem_w=16, signed=True, mul_w=24, off_w=32, frames=40
        ),
        # the pipelined compare tree: a whole frame per beat (PE = NUM, frames back to back) with
        # every map stage, four tree levels with odd nodes; a shift alone (no constants, PE = 3)
        label_select_map_case(
            "n10-pe10-s16-mul9-off12", num=10, pe=10, elem_w=16, signed=True, mul_w=9, off_w=12, frames=80
        ),
        label_select_map_case("n6-pe3-u5-sh2", num=6, pe=3, elem_w=5, signed=False, shift=2),
    ]


def _add_streams() -> list[Case]:
    """add_streams"""
    return [
        Case("add_streams", "pe1-s4", dict(PE=1, IN_W=4, IN_SIGNED=1, OUT_W=5), {"beats": 300}),
        Case("add_streams", "pe4-u2", dict(PE=4, IN_W=2, IN_SIGNED=0, OUT_W=3), {"beats": 300}),
    ]


def _duplicate_streams() -> list[Case]:
    """duplicate_streams"""
    return [
        Case("duplicate_streams", "n2-w8", dict(DATA_W=8, NUM_OUT=2), {"beats": 300}),
        Case("duplicate_streams", "n3-w5", dict(DATA_W=5, NUM_OUT=3), {"beats": 300}),
    ]


def _fifo() -> list[Case]:
    """fifo"""
    return [
        Case("fifo", "ram-d16-w12", dict(DATA_W=12, DEPTH=16, USE_RAM=1), {"beats": 400}),
        Case("fifo", "regs-d5-w3", dict(DATA_W=3, DEPTH=5, USE_RAM=0), {"beats": 400}),
        Case("fifo", "ram-d4-w9-slice", dict(DATA_W=9, DEPTH=4, USE_RAM=1, OUT_SLICE=1), {"beats": 400}),
        Case("fifo", "regs-d3-w2-slice", dict(DATA_W=2, DEPTH=3, USE_RAM=0, OUT_SLICE=1), {"beats": 400}),
        # a chain of FIFOs one block deep each (hw/fifo_chain.sv): 40 words as 3 of 14, the slice after
        # the last; 13 as 2 of 7 without a slice; 10 of at most 16: one FIFO
        Case("fifo_chain", "ram-d40-w8-seg16-slice", dict(DATA_W=8, DEPTH=40, USE_RAM=1, OUT_SLICE=1, SEG_D=16),
             {"beats": 400}),  # fmt: skip
        Case("fifo_chain", "ram-d13-w5-seg8", dict(DATA_W=5, DEPTH=13, USE_RAM=1, SEG_D=8), {"beats": 400}),
        Case("fifo_chain", "ram-d10-w3-seg16-one", dict(DATA_W=3, DEPTH=10, USE_RAM=1, SEG_D=16), {"beats": 400}),
    ]


def _width_converter() -> list[Case]:
    """width_converter"""
    return [
        Case("width_converter", "8to32", dict(IN_W=8, OUT_W=32), {"words": 120}),
        Case("width_converter", "24to6", dict(IN_W=24, OUT_W=6), {"words": 120}),
        Case("width_converter", "10to20", dict(IN_W=10, OUT_W=20), {"words": 120}),
        Case("width_converter", "7to7", dict(IN_W=7, OUT_W=7), {"words": 120}),
    ]


def _skid_buffer() -> list[Case]:
    """skid_buffer"""
    return [
        Case("skid_buffer", "w13", dict(DATA_W=13), {"frames": 20, "beats": 16}),
    ]


def _tv_smooth() -> list[Case]:
    """tv_smooth: 1- to 4-bit codes (signed once), PE 1 / middle / all channels, square, non-square,
    1 x W and H x 1 maps, a small and a large gamma (the latter clamps)."""
    return [
        tv_smooth_case("pe1-ch2-u2-5x6", h=5, w=6, ch=2, pe=1, bits=2, gamma=0.5),
        tv_smooth_case("pe2-ch4-u4-4x4-g1", h=4, w=4, ch=4, pe=2, bits=4, gamma=1.0),
        tv_smooth_case("pe3-ch3-u3-3x7", h=3, w=7, ch=3, pe=3, bits=3, gamma=0.75),
        tv_smooth_case("pe1-ch1-u1-1x9", h=1, w=9, ch=1, pe=1, bits=1, gamma=0.5, frames=4),
        tv_smooth_case("pe2-ch2-u2-6x1", h=6, w=1, ch=2, pe=2, bits=2, gamma=1.0, frames=4),
        tv_smooth_case("pe2-ch6-s3-4x5", h=4, w=5, ch=6, pe=2, bits=3, gamma=0.7, signed=True),
    ]


def table() -> list[Case]:
    """Every case, in the order the tests list them."""
    return [
        *_mvau(),
        *_vvau(),
        *_thresholding(),
        *_thresholding_search(),
        *_sliding_window(),
        *_sliding_window_non_square(),
        *_maxpool(),
        *_tv_smooth(),
        *_label_select(),
        *_add_streams(),
        *_duplicate_streams(),
        *_fifo(),
        *_width_converter(),
        *_skid_buffer(),
    ]
