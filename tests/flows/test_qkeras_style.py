"""QKeras-style QONNX graphs (channels-last tensors around a channels-first Conv, weights quantized by
a Quant node on the float initializer), built by hand and compiled bit-exact against qonnx's
``execute_onnx`` of the original graph."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions
from qonnx.core.modelwrapper import ModelWrapper

Q = "qonnx.custom_op.general"


def _t(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.ravel())


def _quant(x, out, scale, bits, signed, narrow=0, name=None):
    return helper.make_node(
        "Quant", [x, scale, "zero", bits], [out], domain=Q, name=name or f"Quant_{out}",
        signed=signed, narrow=narrow, rounding_mode="ROUND",
    )  # fmt: skip


def qkeras_cnn(quant_first: bool, seed: int = 0, quant_bias: bool = False) -> ModelWrapper:
    """x NHWC (1, 6, 6, 2) -> [Quant] -> Transpose to NCHW -> [Quant] -> Conv(Quant(W), bias, pad 1)
    -> Transpose back to NHWC -> Relu -> Quant (2-bit) -> Reshape (1, 144) -> MatMul(Quant(W2)).
    ``quant_first``: the input quantizer acts on the NHWC input, before the Transpose.
    ``quant_bias``: the bias is a separate Add of a Quant (8 bits) of the float bias, as QKeras writes it."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 2, 3, 3))
    w_scale = (np.abs(w).reshape(4, -1).max(1) / 3).reshape(4, 1, 1, 1)  # per output channel
    w2 = rng.normal(size=(144, 10))
    inits = [
        _t("zero", 0.0), _t("b4", 4), _t("b3", 3), _t("b2", 2), _t("in_scale", 1 / 16),
        _t("W", w), _t("W_scale", w_scale), _t("bias", rng.normal(size=4) * 0.3),
        _t("act_scale", 0.5), _t("W2", w2), _t("W2_scale", np.abs(w2).max()),
        helper.make_tensor("shape", TensorProto.INT64, [2], [1, 144]),
    ]  # fmt: skip
    to_nchw = helper.make_node("Transpose", ["xq" if quant_first else "x"], ["xt"], name="ToNCHW", perm=[0, 3, 1, 2])
    inq = _quant("x" if quant_first else "xt", "xq" if quant_first else "xtq", "in_scale", "b4", 0, name="QuantIn")
    nodes = [inq, to_nchw] if quant_first else [to_nchw, inq]
    nodes += [
        _quant("W", "Wq", "W_scale", "b3", 1, narrow=1, name="QuantW"),
        helper.make_node(
            "Conv", ["xt" if quant_first else "xtq", "Wq"] + ([] if quant_bias else ["bias"]),
            ["c0" if quant_bias else "c"], name="Conv_0", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
        ),
    ]  # fmt: skip
    if quant_bias:
        inits += [_t("bias4", rng.normal(size=(1, 4, 1, 1)) * 0.3), _t("b8", 8), _t("bias_scale", 1 / 64)]
        nodes += [
            _quant("bias4", "bq", "bias_scale", "b8", 1, name="QuantBias"),
            helper.make_node("Add", ["c0", "bq"], ["c"], name="BiasAdd"),
        ]
    nodes += [
        helper.make_node("Transpose", ["c"], ["ct"], name="ToNHWC", perm=[0, 2, 3, 1]),
        helper.make_node("Relu", ["ct"], ["r"], name="Relu_0"),
        _quant("r", "a", "act_scale", "b2", 0, name="QuantAct"),
        helper.make_node("Reshape", ["a", "shape"], ["f"], name="Flatten_0"),
        _quant("W2", "W2q", "W2_scale", "b2", 1, narrow=1, name="QuantW2"),
        helper.make_node("MatMul", ["f", "W2q"], ["y"], name="Dense_0"),
    ]  # fmt: skip
    g = helper.make_graph(
        nodes, "qkeras_style", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 6, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


@pytest.mark.parametrize(
    "quant_first, quant_bias",
    [(True, False), (False, False), (True, True)],
    ids=["quant-then-transpose", "transpose-then-quant", "quantized-bias-add"],
)
def test_qkeras_style_channels_last_cnn_bit_exact(tmp_path, quant_first, quant_bias):
    from qnnflow.flows.ir.reference import decisions, run_qonnx

    model = qkeras_cnn(quant_first, quant_bias=quant_bias)
    path = tmp_path / "qkeras.onnx"
    model.save(str(path))
    x = (np.random.default_rng(1).integers(0, 16, size=(300, 6, 6, 2)) / 16).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=500), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    assert r.checks[-1]["integer_exact"]
    ops = [lay["op_type"] for lay in r.estimates["layers"]]
    assert ops.count("SlidingWindow") == 1 and ops.count("MVAU") == 2 and "LabelSelect" in ops
    # an independent look at the end result: the dataflow graph's class indices on the NHWC inputs
    # equal the decisions of qonnx's execution of the hand-made graph
    from qnnflow.flows.ir.execute import run_batched

    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    want = decisions(run_qonnx(ModelWrapper(str(path)), x))
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) > 3  # the test inputs exercise several classes
