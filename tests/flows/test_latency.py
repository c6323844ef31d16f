"""The latency model (flows/compile/latency.py) against the figures the modules' headers state and
against schedules worked out by hand. The whole model against the stitched simulation is asserted
wherever a test simulates a design (tests/flows/helpers.py::assert_latency_estimated)."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.compile import latency
from qnnflow.flows.ir.layers import MVAU, Thresholding


@pytest.mark.parametrize(("n", "stages"), [(1, 1), (2, 1), (3, 2), (8, 2), (9, 3), (32, 3), (33, 4), (128, 4)])
def test_adder_tree_latency_is_the_headers(n, stages):
    # hw/adder_tree.sv: "LPS = 2, PRE = 1: N <= 2: 1; N <= 8: 2; N <= 32: 3; N <= 128: 4"
    assert latency.adder_tree_latency(n, 1) == stages


@pytest.mark.parametrize(("num_t", "cycles"), [(1, 2), (4, 2), (5, 3), (16, 3), (17, 4), (64, 4), (65, 5), (255, 5)])
def test_threshold_count_latency_is_the_headers(num_t, cycles):
    # hw/threshold_count.sv: "NUM_T <= 4: 2; <= 16: 3; <= 64: 4; <= 255: 5"
    assert latency.threshold_count_latency(num_t) == cycles


@pytest.mark.parametrize(("act", "cycles"), [("UINT1", 6), ("UINT2", 6), ("UINT3", 7), ("UINT4", 7), ("UINT8", 9)])
def test_thresholding_latency_is_the_headers(act, cycles):
    # hw/thresholding.sv: "6 for up to 4 thresholds, 7 for 5..16, 8 for 17..64, 9 for 65..255"
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
    ("in_w", "w_w", "bipolar", "registered"),
    [(2, 2, False, False), (3, 2, False, False), (3, 3, False, True), (8, 4, False, True), (8, 8, True, False)],
)
def test_mac_latency_counts_the_product_register_as_the_header_says(in_w, w_w, bipolar, registered):
    p = {"IN_W": in_w, "W_W": w_w, "IN_BIPOLAR": 0, "W_BIPOLAR": int(bipolar)}
    assert latency.products_registered(p) is registered
    # SIMD 8: the tree after a product register has PRE 0 (registers after levels 2 and 3), without
    # one PRE 1 (after levels 1 and 3): the same 2 stages, so the register adds exactly 1 cycle
    assert latency.mac_pipeline_latency(8, 3, registered) == latency.mac_pipeline_latency(8, 3) + int(registered)
