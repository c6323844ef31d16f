"""Patterns of other tools' QONNX exports, built by hand with ``onnx.helper``, compiled with every step
verified and then compared with qonnx's execution of the original file, decision for decision (the
third-party models issue): a signed 1-bit Quant (bipolar in qonnx), a Gemm with its weights first (a
clear refusal)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions
from qnnflow.flows.ir.execute import run_batched
from qonnx.core.modelwrapper import ModelWrapper

Q = "qonnx.custom_op.general"


def _t(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.ravel())


def _quant(x, out, scale, bits, signed, narrow=0, zero="zero"):
    return helper.make_node(
        "Quant", [x, scale, zero, bits], [out], domain=Q, name=f"Quant_{out}", signed=signed, narrow=narrow,
        rounding_mode="ROUND",
    )  # fmt: skip


def _model(nodes, inits, n_in, n_out, opset=13) -> ModelWrapper:
    g = helper.make_graph(
        nodes, "pattern", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(Q, 1)]))


def signed_1bit_mlp(zero_point: float = 0.0, seed: int = 0) -> ModelWrapper:
    """x (32) -> Quant 4-bit unsigned -> MatMul(Quant 1-bit signed narrow W) -> BatchNorm ->
    Quant(bitwidth 1, signed, narrow: bipolar in qonnx) -> MatMul(Quant 1-bit W) -> y (10): an older
    Brevitas export's binarized MLP."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(32, 24)), rng.normal(size=(24, 10))
    inits = [
        _t("zero", 0.0), _t("zp_act", zero_point), _t("b1", 1), _t("b4", 4), _t("in_scale", 1 / 15),
        _t("one", 1.0), _t("act_scale", 0.5), _t("W1", w1), _t("W2", w2),
        _t("bn_s", rng.uniform(0.5, 2, 24)), _t("bn_b", rng.normal(size=24)), _t("bn_m", rng.normal(size=24) * 2),
        _t("bn_v", rng.uniform(1, 4, 24)),
    ]  # fmt: skip
    nodes = [
        _quant("x", "xq", "in_scale", "b4", 0),
        _quant("W1", "W1q", "one", "b1", 1, narrow=1),
        helper.make_node("MatMul", ["xq", "W1q"], ["h"], name="FC_0"),
        helper.make_node("BatchNormalization", ["h", "bn_s", "bn_b", "bn_m", "bn_v"], ["hb"], name="BN_0"),
        _quant("hb", "a", "act_scale", "b1", 1, narrow=1, zero="zp_act"),
        _quant("W2", "W2q", "one", "b1", 1, narrow=1),
        helper.make_node("MatMul", ["a", "W2q"], ["y"], name="FC_1"),
    ]
    return _model(nodes, inits, 32, 10)


def test_signed_1bit_quant_is_bipolar_as_in_qonnx(tmp_path):
    from qnnflow.flows.ir.reference import decisions, run_qonnx

    model = signed_1bit_mlp()
    path = tmp_path / "bnn.onnx"
    model.save(str(path))
    x = (np.random.default_rng(1).integers(0, 16, size=(300, 32)) / 15).astype(np.float32)
    ref = run_qonnx(ModelWrapper(str(path)), x)
    # qonnx's semantics, which the compile must follow: the activation takes two values, not one
    _, kept = run_qonnx(ModelWrapper(str(path)), x, keep={"a"})
    assert len(np.unique(kept["a"])) == 2
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=2000), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    np.testing.assert_array_equal(got, decisions(ref))
    assert len(np.unique(got)) > 3


def test_gemm_with_weights_first_is_refused_naming_the_node(tmp_path):
    rng = np.random.default_rng(0)
    inits = [_t("zero", 0.0), _t("b4", 4), _t("s", 1 / 8), _t("W", rng.normal(size=(10, 16)))]
    nodes = [
        _quant("x", "xq", "s", "b4", 0),
        _quant("W", "Wq", "s", "b4", 1, narrow=1),
        helper.make_node("Transpose", ["xq"], ["xt"], name="T", perm=[1, 0]),
        helper.make_node("Gemm", ["Wq", "xt"], ["yt"], name="Gemm_wx"),
        helper.make_node("Transpose", ["yt"], ["y"], name="T2", perm=[1, 0]),
    ]
    path = tmp_path / "wx.onnx"
    _model(nodes, inits, 16, 10).save(str(path))
    x = (rng.integers(0, 16, size=(20, 16)) / 8).astype(np.float32)
    with pytest.raises(ValueError, match=r"Gemm_\w+ \(Gemm\): the constant weights are its first operand"):
        compile_model(path, tmp_path / "b", inputs=x, verbose=False)


def _bn_mlp(opset: int) -> ModelWrapper:
    """x -> Quant 4-bit -> MatMul(Quant 4-bit W) -> BatchNormalization(training_mode=0 from opset 14)
    -> Relu -> Quant 3-bit -> MatMul(Quant 4-bit W2) -> y, written at ``opset``."""
    rng = np.random.default_rng(3)
    inits = [
        _t("zero", 0.0), _t("b4", 4), _t("b3", 3), _t("s", 1 / 8), _t("W", rng.normal(size=(16, 12))),
        _t("W2", rng.normal(size=(12, 10))), _t("bn_s", rng.uniform(-2, 2, 12)), _t("bn_b", rng.normal(size=12)),
        _t("bn_m", rng.normal(size=12)), _t("bn_v", rng.uniform(0.5, 3, 12)), _t("a_s", 0.25),
    ]  # fmt: skip
    bn_attrs = {"epsilon": 1e-5} | ({"training_mode": 0} if opset >= 14 else {})
    nodes = [
        _quant("x", "xq", "s", "b4", 0),
        _quant("W", "Wq", "s", "b4", 1, narrow=1),
        helper.make_node("MatMul", ["xq", "Wq"], ["h"], name="FC_0"),
        helper.make_node("BatchNormalization", ["h", "bn_s", "bn_b", "bn_m", "bn_v"], ["hb"], name="BN_0", **bn_attrs),
        helper.make_node("Relu", ["hb"], ["r"], name="Relu_0"),
        _quant("r", "a", "a_s", "b3", 0),
        _quant("W2", "W2q", "s", "b4", 1, narrow=1),
        helper.make_node("MatMul", ["a", "W2q"], ["y"], name="FC_1"),
    ]
    return _model(nodes, inits, 16, 10, opset=opset)


@pytest.mark.parametrize("opset", [13, 14, 17])
def test_batchnorm_of_any_opset_compiles_and_every_written_graph_is_valid(tmp_path, opset):
    """A BatchNormalization with ``training_mode`` (opset 14+) in the tail of an accumulator: the
    compile is exact, and the graphs the flow writes (the dataflow graph, the tail evaluator's
    float32 graph) pass ``onnx.checker`` (issue: the tail graph was opset 13 with an opset-14
    attribute, and onnxruntime refused it with a traceback)."""
    import onnx
    from qnnflow.flows.ir.reference import decisions, run_qonnx
    from qnnflow.flows.passes.tail import IntTensor, TailEvaluator, TailStep

    model = _bn_mlp(opset)
    onnx.checker.check_model(model.model)
    path = tmp_path / "bn.onnx"
    model.save(str(path))
    x = (np.random.default_rng(4).integers(0, 16, size=(200, 16)) / 8).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=500), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    onnx.checker.check_model(onnx.load(str(r.dataflow)))
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    np.testing.assert_array_equal(got, decisions(run_qonnx(ModelWrapper(str(path)), x)))
    # the tail evaluator's own graph, float32 path, for the same BatchNormalization node
    bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    g = {i.name: np.asarray(onnx.numpy_helper.to_array(i), dtype=np.float64) for i in model.graph.initializer}
    t = IntTensor("q", np.ones(12), np.zeros(12), np.full(12, -8), np.full(12, 8), [1, 12], 1)
    t.tail = [TailStep(bn, [None] + [g[i] for i in bn.input[1:]])]
    ev = TailEvaluator(t)
    probe = np.repeat(np.arange(-8, 9)[:, None], 12, axis=1)
    want = ev(probe)  # float64
    onnx.checker.check_model(ev.ex.model.model if hasattr(ev.ex, "model") else ev.model.model)
    f32 = np.asarray(ev.ex.run(probe.astype(np.float32))).reshape(probe.shape)
    np.testing.assert_allclose(f32, want, rtol=1e-6, atol=1e-6)
