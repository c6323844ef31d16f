"""The latency model (flows/compile/latency.py) against the figures the modules' headers state and
against schedules worked out by hand. The whole model against the stitched simulation is asserted
wherever a test simulates a design (tests/flows/helpers.py::assert_latency_estimated)."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.compile import latency
from qnnflow.flows.ir.layers import FIFO, MVAU, Thresholding


@pytest.mark.parametrize(("n", "stages"), [(1, 1), (2, 1), (3, 2), (8, 2), (9, 3), (32, 3), (33, 4), (128, 4)])
def test_adder_tree_latency_is_the_headers(n, stages):
    # hw/adder_tree.sv: "LPS = 2, PRE = 1: N <= 2: 1; N <= 8: 2; N <= 32: 3; N <= 128: 4"
    assert latency.adder_tree_latency(n, 1) == stages


@pytest.mark.parametrize(("num_t", "cycles"), [(1, 2), (4, 2), (5, 3), (16, 3), (17, 4), (64, 4), (65, 5), (255, 5)])
def test_threshold_count_latency_is_the_headers(num_t, cycles):
    # hw/threshold_count.sv: "NUM_T <= 4: 2; <= 16: 3; <= 64: 4; <= 255: 5"
    assert latency.threshold_count_latency(num_t) == cycles


@pytest.mark.parametrize(("act", "cycles"), [("UINT1", 6), ("UINT2", 6), ("UINT3", 7), ("UINT4", 7), ("UINT8", 51)])
def test_thresholding_latency_is_the_headers(act, cycles):
    # hw/thresholding.sv: "6 for up to 4 thresholds, 7 for 5..16, 8 for 17..64, 9 for 65..255"; from
    # 16 thresholds the estimate assumes the binary search (THR_SEARCH): "51 for 128..255"
    node = Thresholding.make("t", ["x", "thr"], ["y"], NumChannels=4, PE=2, inputDataType="INT8", outputDataType=act)
    assert latency.layer_latency(Thresholding(node)) == cycles


def _mvau(mw, mh, pe, simd, vectors=1):
    node = MVAU.make(
        "m", ["x", "w"], ["y"], MW=mw, MH=mh, PE=pe, SIMD=simd, vectors=[vectors], inputDataType="UINT2",
        weightDataType="INT2", outputDataType="INT8", accDataType="INT8", noActivation=1,
    )  # fmt: skip
    return MVAU(node)


def test_mvau_schedule_by_hand():
    """MW 4, SIMD 2 (SF 2), MH 4, PE 2 (NF 2), two vectors; input beats arriving at 0, 5, 6, 7.
    Vector 0: fold 0 issues at 0 and 5 (waits for beat 1), fold 1 at 6, 7; vector 1: fold 0 at 8
    (beat 2 came at 6) and 9, fold 1 at 10, 11. Outputs follow each fold's last slice by L."""
    lay = _mvau(4, 4, 2, 2, vectors=2)
    lat = latency.layer_latency(lay)
    assert lat == 1 + latency.mac_pipeline_latency(2, 0)
    (out,) = latency.schedule(lay, [np.array([0, 5, 6, 7])])
    np.testing.assert_array_equal(out, np.array([5, 7, 9, 11]) + lat)


def test_flow_schedule_keeps_one_beat_per_cycle():
    node = Thresholding.make(
        "t", ["x", "thr"], ["y"], NumChannels=3, PE=1, inputDataType="INT8", outputDataType="UINT1"
    )
    lay = Thresholding(node)
    (out,) = latency.schedule(lay, [np.array([0, 0, 4])])  # two beats "at once" leave a cycle apart
    np.testing.assert_array_equal(out, np.array([0, 1, 4]) + 6)


@pytest.mark.parametrize(
    ("in_w", "w_w", "bipolar", "terms", "mul"),
    [(2, 2, False, 1, False), (3, 2, False, 1, False), (3, 3, False, 3, False), (8, 4, False, 4, False),
     (3, 8, False, 3, False), (5, 5, False, 1, True), (8, 8, True, 1, False)],
)  # fmt: skip
def test_mac_latency_follows_the_header_product_rule(in_w, w_w, bipolar, terms, mul):
    """Three or more partial products enter the tree as terms (K = the narrower width); products of
    two operands wider than 4 bits go to multipliers, two registers before the tree."""
    p = {"IN_W": in_w, "W_W": w_w, "IN_BIPOLAR": 0, "W_BIPOLAR": int(bipolar)}
    assert latency.product_terms(p) == terms
    assert latency.uses_multipliers(p) is mul
    base = latency.mac_pipeline_latency(8, 3)  # SIMD 8, PRE 1: registers after levels 1 and 3
    got = latency.mac_pipeline_latency(8, 3, mul, terms)
    # by hand: 8 x 4 = 32 terms, levels 1..5, registers after 1, 3, 5: one stage more than 8 terms;
    # 8 x 3 = 24 terms: the same 5 levels; multipliers: 2 registers + a tree with a register after
    # every level (LPS 1): 1, 2, 3
    assert got - base == {(1, False): 0, (3, False): 1, (4, False): 1, (1, True): 3}[(terms, mul)]


def test_mac_latency_registers_block_ram_thresholds_twice():
    """By hand from hw/mac_pipeline.sv's header, SIMD 1 (a tree of one term: 1 stage): input 1 +
    tree 1 + accumulate 1 + thresholds + queue 2. Three thresholds: read 1, compares 1, a tree of 3
    one-bit terms 1 = 3; fifteen (4-bit activations, block RAM): read 1, again 1 (THR_REG2),
    compares 1, a tree of 15 terms 2 (registers after levels 2 and 4) = 5."""
    assert latency.mac_pipeline_latency(1, 3) == 8
    assert latency.mac_pipeline_latency(1, 15) == 10
    assert latency.mac_pipeline_latency(1, 0) == 5
    # three thresholds in block RAM (THR_BRAM): read 1, again 1, compares 1, tree 1
    assert latency.mac_pipeline_latency(1, 3, thr_bram=True) == 9
    assert latency.mac_pipeline_latency(1, 15, thr_bram=True) == 10


@pytest.mark.parametrize(
    ("in_w", "in_bip", "w_w", "w_signed", "w_bip", "per_lane_x", "msum"),
    [(8, 0, 1, 0, 1, False, True), (1, 1, 1, 0, 1, False, False), (8, 0, 1, 0, 1, True, False),
     (3, 0, 2, 1, 0, False, True), (2, 0, 2, 1, 0, False, False), (8, 0, 2, 0, 0, False, False),
     (8, 0, 3, 1, 0, False, False)],
)  # fmt: skip
def test_masked_sums_follow_the_header_rule(in_w, in_bip, w_w, w_signed, w_bip, per_lane_x, msum):
    """hw/mac_pipeline.sv's MSUM, by hand: an MVAU's bipolar weights on a non-bipolar input (not
    XNOR, not a VVAU's per-lane inputs), or 2-bit signed weights on inputs of 3 bits or more; its
    two trees' sums are combined in one more stage."""
    p = {"IN_W": in_w, "IN_BIPOLAR": in_bip, "W_W": w_w, "W_SIGNED": w_signed, "W_BIPOLAR": w_bip}
    assert latency.masked_sums(p, per_lane_x=per_lane_x) is msum
    assert latency.mac_pipeline_latency(8, 3, msum=True) == latency.mac_pipeline_latency(8, 3) + 1


@pytest.mark.parametrize(
    ("mh", "pe", "mw", "simd", "bank_d", "delay"),
    [(64, 16, 784, 49, 64, 2), (8, 2, 12, 2, 4, 3), (256, 1, 2304, 32, 2048, 3), (16, 1, 16, 1, 4, 4),
     (256, 1, 4096, 32, 64, 6), (8, 2, 8, 2, 0, 0), (2, 2, 40, 2, 4, 2), (2, 2, 8, 2, 4, 1)],
)  # fmt: skip
def test_bank_delay_follows_the_header(mh, pe, mw, simd, bank_d, delay):
    """hw/mvau.sv's W_DELAY, by hand: 1, one more with more than one fold (the input buffer's bypass
    registered), and one per registered 4:1 level of the banks' selection. Several folds: one bank,
    up to four: 2; 6 banks (24 words of 4) and 9 (CNV's last convolution, 18,432 words of 2,048):
    4:1 levels of 2, one registered: 3; 64 banks: three levels, two registered: 4; 512 banks:
    five levels: 6; no banks: 0. One fold: 5 banks (two levels): 2; one bank: 1."""
    p = {"MH": mh, "PE": pe, "MW": mw, "SIMD": simd, "W_BANK_D": bank_d}
    assert latency.bank_delay(p) == delay


@pytest.mark.parametrize(
    ("depth", "width", "module", "cycles"),
    [(16, 8, "fifo", 4), (604, 24, "fifo", 4), (1117, 32, "fifo_chain", 3 * 3 + 1),
     (1025, 36, "fifo_chain", 3 * 3 + 1)],
)  # fmt: skip
def test_fifo_latency_is_the_headers(depth, width, module, cycles):
    """hw/fifo.sv with OUT_REG and the slice: 3 + 1; deeper than one row of block RAMs (1,117 x 32
    bits: three rows of 512 x 36; 1,025 x 36 the same) hw/fifo_chain.sv: NSEG * 3 + 1; 604 x 24
    bits is one row (two 1,024 x 18 side by side)."""
    from qnnflow.flows.codegen.backends import backend

    layer = FIFO(FIFO.make("f", ["x"], ["y"], depth=depth, width=width, beats=10))
    assert backend(layer, None).module == module
    assert latency.layer_latency(layer) == cycles
