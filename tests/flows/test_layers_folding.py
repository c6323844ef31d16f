"""HW layers (execute vs an independent numpy model, cycles), folding constraints and folding.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile import folding
from qnnflow.flows.compile.estimates import estimates, table
from qnnflow.flows.ir.layers import MVAU, Thresholding, get_layer
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def _mvau(mw=64, mh=64, pe=1, simd=1, xnor=0):
    return MVAU.make(
        "MatMul_0",
        ["x", "W"],
        ["y"],
        MW=mw,
        MH=mh,
        PE=pe,
        SIMD=simd,
        vectors=[1],
        inputDataType="BIPOLAR" if xnor else "UINT2",
        weightDataType="BIPOLAR" if xnor else "INT2",
        outputDataType="INT10",
        accDataType="INT10",
        noActivation=1,
        binaryXnorMode=xnor,
    )


def _graph(*nodes, w_shape=(64, 64)) -> ModelWrapper:
    g = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, [1, 64])],
    )
    m = ModelWrapper(helper.make_model(g))
    m.set_initializer("W", np.ones(w_shape, dtype=np.float32))
    return m


def test_pe_must_divide_mh_message():
    lay = get_layer(_mvau(pe=6))
    with pytest.raises(ValueError, match=r"^MatMul_0 \(MVAU\): PE must divide MH \(64\), not 6$"):
        lay.check()
    lay = get_layer(_mvau(simd=5))
    with pytest.raises(ValueError, match=r"^MatMul_0 \(MVAU\): SIMD must divide MW \(64\), not 5$"):
        lay.check()


def test_mvau_cycles_and_widths():
    lay = get_layer(_mvau(mw=784, mh=64, pe=4, simd=16))
    lay.set("vectors", [3, 3])
    assert lay.exp_cycles() == (64 // 4) * (784 // 16) * 9
    assert lay.in_width == 16 * 2 and lay.out_width == 4 * 10


def test_mvau_execute_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(5, 64))
    w = rng.integers(-1, 2, size=(64, 64))
    thr = np.sort(rng.integers(-20, 20, size=(64, 3)), axis=1)
    node = MVAU.make(
        "m",
        ["x", "W", "T"],
        ["y"],
        MW=64,
        MH=64,
        inputDataType="UINT2",
        weightDataType="TERNARY",
        outputDataType="INT2",
        accDataType="INT10",
        ActVal=-2,
    )
    got = get_layer(node).execute([x, w, thr])[0]
    acc = x @ w.T
    want = (acc[:, :, None] >= thr[None]).sum(-1) - 2
    np.testing.assert_array_equal(got, want)


def test_xnor_mvau_counts_agreeing_signs():
    rng = np.random.default_rng(1)
    x = rng.choice([-1, 1], size=(4, 64))
    w = rng.choice([-1, 1], size=(10, 64))
    node = MVAU.make(
        "m",
        ["x", "W"],
        ["y"],
        MW=64,
        MH=10,
        inputDataType="BIPOLAR",
        weightDataType="BIPOLAR",
        outputDataType="UINT7",
        accDataType="INT8",
        noActivation=1,
        binaryXnorMode=1,
    )
    got = get_layer(node).execute([x, w])[0]
    np.testing.assert_array_equal(got, (x[:, None, :] == w[None]).sum(-1))


def test_thresholding_bipolar_output():
    node = Thresholding.make(
        "t", ["x", "T"], ["y"], NumChannels=2, inputDataType="INT4", outputDataType="BIPOLAR"
    )
    got = get_layer(node).execute([np.array([[-3, 5], [0, 0]]), np.array([[0], [1]])])[0]
    np.testing.assert_array_equal(got, [[-1, 1], [1, -1]])


def test_fold_for_cycles_meets_target_and_balances():
    m = _graph(_mvau(mw=64, mh=64))
    folding.fold_for_cycles(m, 256)
    lay = get_layer(m.graph.node[0])
    assert lay.exp_cycles() <= 256
    assert lay.exp_cycles() * 2 > 256  # not more parallel than needed
    assert lay.folding()["PE"] * lay.folding()["SIMD"] == 16


def test_infeasible_target_names_layer_and_nearest_choice():
    m = _graph(_mvau(mw=64, mh=64))
    get_layer(m.graph.node[0]).set("vectors", [4])
    with pytest.raises(
        ValueError,
        match=r"target of 2 cycles per frame is not reachable: MatMul_0 \(MVAU\) needs at "
        r"least 4 cycles even fully parallel; the nearest feasible target is 4",
    ):
        folding.fold_for_cycles(m, 2)


def test_folding_json_round_trip_and_errors(tmp_path):
    m = _graph(_mvau())
    folding.fold_for_cycles(m, 100)
    data = folding.folding_dict(m)
    data["layers"]["MatMul_0"]["PE"] = 8
    data["layers"]["MatMul_0"]["SIMD"] = 4
    path = tmp_path / "folding.json"
    path.write_text(json.dumps(data))
    folding.apply_folding(m, path)
    assert get_layer(m.graph.node[0]).folding() == {"PE": 8, "SIMD": 4}
    with pytest.raises(ValueError, match=r"PE must divide MH \(64\), not 6"):
        folding.apply_folding(m, {"layers": {"MatMul_0": {"PE": 6}}})
    with pytest.raises(ValueError, match=r"unknown layers \['Nope'\]"):
        folding.apply_folding(m, {"layers": {"Nope": {"PE": 1}}})
    with pytest.raises(ValueError, match=r"has no folding parameter 'K'"):
        folding.apply_folding(m, {"layers": {"MatMul_0": {"K": 1}}})


def test_estimates_report_ii_fps_and_both_families():
    m = _graph(_mvau(mw=64, mh=64, pe=4, simd=8))
    est = estimates(m, clock_mhz=100.0)
    assert est["ii_cycles"] == 16 * 8
    assert est["fps"] == pytest.approx(100e6 / 128)
    assert set(est["totals"]["ecp5"]) == {"LUT4", "FF", "DP16KD", "MULT18X18D"}
    assert set(est["totals"]["xc7"]) == {"LUT6", "FF", "BRAM18", "DSP48"}
    assert "MatMul_0" in table(est) and "frames/s" in table(est)
    # a more parallel folding of the same layer never costs fewer LUTs
    m2 = _graph(_mvau(mw=64, mh=64, pe=16, simd=16))
    assert estimates(m2, 100.0)["totals"]["xc7"]["LUT6"] > est["totals"]["xc7"]["LUT6"]


def test_datatype_helpers_are_consistent():
    assert DataType["INT10"].min() == -512
