"""1-D convolutional networks (radio, audio: input [N, C, L]) through the sliding window with a unit
height: compiled with every step verified, simulated, and compared decision for decision with qonnx's
execution of the original file (the third-party models issue, item 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions
from qnnflow.flows.ir.execute import run_batched
from qnnflow.flows.ir.reference import decisions, run_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import Q, assert_latency_estimated
from tests.flows.helpers import quant as _quant
from tests.flows.helpers import tensor as _t


def vgg1d(length: int = 48, seed: int = 0) -> ModelWrapper:
    """x [N, 2, L] (I/Q samples) -> Quant 8-bit signed -> Conv1d(2->8, k 3, pad 1) -> BatchNorm ->
    Relu -> Quant 4-bit -> MaxPool1d(2) -> Conv1d(8->8, k 3, stride 2, per-channel weight scales)
    -> Relu -> Quant 3-bit -> Flatten -> Gemm -> y (5): a small radio-style VGG, as Brevitas
    exports QuantConv1d (per-channel scales of shape (O, 1, 1), BatchNorm on [N, C, L])."""
    rng = np.random.default_rng(seed)
    l2 = length // 2
    l3 = (l2 + 2 - 3) // 2 + 1
    w3 = rng.normal(size=(5, 8 * l3)) * 0.3
    inits = [
        _t("zero", 0.0), _t("b8", 8), _t("b4", 4), _t("b3", 3), _t("xs", 1 / 64), _t("ws", 1 / 8),
        _t("W1", rng.normal(size=(8, 2, 3)) * 0.5), _t("W2", rng.normal(size=(8, 8, 3)) * 0.4),
        _t("ws2", rng.uniform(0.05, 0.2, (8, 1, 1))), _t("bn_s", rng.uniform(0.5, 1.5, 8)),
        _t("bn_b", rng.normal(size=8)),
        _t("bn_m", rng.normal(size=8)), _t("bn_v", rng.uniform(0.5, 2, 8)), _t("a1", 0.25), _t("a2", 0.5),
        _t("W3", w3 - w3.mean(axis=1, keepdims=True)),  # per class zero-sum: Relu outputs are all >= 0
    ]  # fmt: skip
    nodes = [
        _quant("x", "xq", "xs", "b8", 1),
        _quant("W1", "W1q", "ws", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xq", "W1q"], ["c1"], name="Conv1d_0", kernel_shape=[3], pads=[1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"], name="BN_0"),
        helper.make_node("Relu", ["n1"], ["r1"], name="Relu_0"),
        _quant("r1", "q1", "a1", "b4", 0),
        helper.make_node("MaxPool", ["q1"], ["p1"], name="MaxPool1d_0", kernel_shape=[2], strides=[2]),
        _quant("W2", "W2q", "ws2", "b4", 1, narrow=1),
        helper.make_node("Conv", ["p1", "W2q"], ["c2"], name="Conv1d_1", kernel_shape=[3], pads=[1, 1], strides=[2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="Relu_1"),
        _quant("r2", "q2", "a2", "b3", 0),
        helper.make_node("Flatten", ["q2"], ["f"], name="Flatten_0"),
        _quant("W3", "W3q", "ws", "b4", 1, narrow=1),
        helper.make_node("Gemm", ["f", "W3q"], ["y"], name="Gemm_0", transB=1),
    ]
    g = helper.make_graph(
        nodes, "vgg1d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, length])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


def _inputs(n: int, length: int = 48, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).integers(-128, 128, size=(n, 2, length)) / 64).astype(np.float32)


def test_conv1d_network_compiles_exactly(tmp_path):
    path = tmp_path / "vgg1d.onnx"
    vgg1d().save(str(path))
    x = _inputs(200)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=2000), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    want = decisions(run_qonnx(ModelWrapper(str(path)), x))
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) >= 3
    ops = [layer["op_type"] for layer in r.estimates["layers"]]
    assert ops.count("SlidingWindow") == 2 and ops.count("MaxPool") == 1 and ops.count("MVAU") == 3
    from qnnflow.flows.ir.layers import get_layer

    swg = [get_layer(n) for n in ModelWrapper(str(r.dataflow)).graph.node if n.op_type == "SlidingWindow"]
    assert [list(s.attrs["ConvKernelDim"]) for s in swg] == [[1, 3], [1, 3]]  # one row, three samples
    assert list(swg[1].attrs["Stride"]) == [1, 2]


@pytest.mark.rtl
def test_conv1d_network_simulates_bit_exact(tmp_path):
    from qnnflow.sim.stitch import simulate

    path = tmp_path / "vgg1d.onnx"
    vgg1d().save(str(path))
    x = _inputs(40, seed=2)
    compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=2000), verbose=False)
    sim = simulate(tmp_path / "b", inputs=x, log=lambda _m: None)
    assert sim["mismatches"] == 0
    assert_latency_estimated(sim)
    hw = decisions(np.load(Path(sim["results_dir"]) / "outputs.npy"))
    np.testing.assert_array_equal(hw, decisions(run_qonnx(ModelWrapper(str(path)), x)))
    assert len(np.unique(hw)) >= 3


def test_conv1d_on_an_input_that_is_not_ncl_is_refused(tmp_path):
    model = vgg1d()
    # a 1-D Conv reached through a Reshape from a flat input: the rewrite wants [N, C, L] at the input
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 96
    del model.graph.input[0].type.tensor_type.shape.dim[2]
    shape = helper.make_tensor("to_ncl", TensorProto.INT64, [3], [1, 2, 48])
    model.graph.initializer.append(shape)
    model.graph.node.insert(0, helper.make_node("Reshape", ["x", "to_ncl"], ["x3"], name="ToNCL"))
    model.graph.node[1].input[0] = "x3"
    path = tmp_path / "m.onnx"
    model.save(str(path))
    with pytest.raises(
        ValueError, match=r"Conv1d_0 \(Conv\): 1-D convolutions and pooling are lowered for a graph input"
    ):
        compile_model(path, tmp_path / "b", inputs=np.zeros((4, 96), np.float32), verbose=False)
