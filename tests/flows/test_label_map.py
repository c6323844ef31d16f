"""Per-class scales and offsets before label selection (issue 11, item 1): heads whose logits are
``a_c * acc_c + b_c`` with ``a_c`` / ``b_c`` differing between classes compile in label mode to a
LabelSelect with an exact integer per-class map (flows/passes/label_map.py). Every decision is compared
with qonnx's execution of the original file; the map itself with exact rational arithmetic."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.execute import run_batched
from qnnflow.flows.ir.layers import get_layer
from qnnflow.flows.ir.reference import decisions, run_qonnx, run_qonnx_double
from qnnflow.flows.passes.label_map import MAX_VALUE_BITS, class_order_map, compose
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import Q
from tests.flows.helpers import quant as _quant
from tests.flows.helpers import tensor as _t


def _model(nodes, inits, n_in: int, n_out: int, out_type=TensorProto.FLOAT) -> ModelWrapper:
    g = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", out_type, [1, n_out])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


def qkeras_mlp(head: str, seed: int = 0, n_in: int = 16, width: int = 12, n_out: int = 10) -> ModelWrapper:
    """x -> Quant 4-bit unsigned -> Dense(Quant 4-bit W) + bias -> Relu -> Quant 3-bit -> Dense -> head.

    ``head``: "bias" (a float per-class bias off the accumulator's grid), "channel_scales" (per-output
    weight scales of the last Dense, as Brevitas / QKeras per-channel quantizers write them, and a
    bias), "negative" (one negative scale, no offset), "mixed_signs" (a per-class Mul of mixed signs
    and a zero, then TopK in the graph)."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=(n_in, width)) * 0.4
    w1 = rng.normal(size=(width, n_out))
    inits = [
        _t("zero", 0.0), _t("b4", 4), _t("b3", 3), _t("xs", 1 / 15), _t("ws", 1 / 8), _t("as", 0.25),
        _t("W0", w0 - w0.mean(axis=0)), _t("bias0", rng.normal(size=width) * 0.3),
        _t("W1", w1 - w1.mean(axis=1, keepdims=True)),
        _t("bias1", rng.normal(size=n_out) * 0.37),  # float32, not a multiple of the accumulator's 1/32
    ]  # fmt: skip
    w1_scale = "ws"
    if head == "channel_scales":
        inits.append(_t("ws1", rng.uniform(0.05, 0.4, size=(1, n_out))))
        w1_scale = "ws1"
    nodes = [
        _quant("x", "xq", "xs", "b4", 0),
        _quant("W0", "W0q", "ws", "b4", 1, narrow=1),
        helper.make_node("MatMul", ["xq", "W0q"], ["h0"], name="Dense_0"),
        helper.make_node("Add", ["h0", "bias0"], ["h1"], name="Bias_0"),
        helper.make_node("Relu", ["h1"], ["h2"], name="Relu_0"),
        _quant("h2", "a0", "as", "b3", 0),
        _quant("W1", "W1q", w1_scale, "b4", 1, narrow=1),
        helper.make_node("MatMul", ["a0", "W1q"], ["z"], name="Dense_1"),
    ]
    out_type = TensorProto.FLOAT
    if head in ("bias", "channel_scales"):
        nodes.append(helper.make_node("Add", ["z", "bias1"], ["y"], name="Bias_1"))
    elif head == "negative":  # one negative scale for all classes, no TopK: the label select negates
        inits.append(_t("neg", -0.75))
        nodes.append(helper.make_node("Mul", ["z", "neg"], ["y"], name="Negate_1"))
    elif head == "mixed_signs":
        scales = rng.uniform(0.2, 2.0, n_out) * rng.choice([-1.0, 1.0], n_out)
        scales[3] = 0.0  # a class whose logit is its bias alone
        inits += [_t("cls_scale", scales), helper.make_tensor("k", TensorProto.INT64, [1], [1])]
        nodes += [
            helper.make_node("Mul", ["z", "cls_scale"], ["zs"], name="ClassScale_0"),
            helper.make_node("Add", ["zs", "bias1"], ["logits"], name="Bias_1"),
            helper.make_node("TopK", ["logits", "k"], ["values", "y"], name="TopK_0", axis=-1),
        ]
        out_type, n_out = TensorProto.INT64, 1
    else:
        raise AssertionError(head)
    return _model(nodes, inits, n_in, n_out, out_type)


def conv_head(seed: int = 0, n_out: int = 10) -> ModelWrapper:
    """A CNN whose classifier is a convolution over the whole 4x4 map (QKeras' Conv2D head): x (1, 2,
    4, 4) -> Quant 4-bit -> Conv 3x3 pad 1 (4 channels) -> Relu -> Quant 3-bit -> Conv 4x4 (n_out,
    per-channel weight scales) -> Flatten -> per-class float bias -> TopK."""
    rng = np.random.default_rng(seed)
    w0, w1 = rng.normal(size=(4, 2, 3, 3)) * 0.4, rng.normal(size=(n_out, 4, 4, 4))
    inits = [
        _t("zero", 0.0), _t("b4", 4), _t("b3", 3), _t("xs", 1 / 15), _t("ws", 1 / 8), _t("as", 0.25),
        _t("W0", w0), _t("W1", w1 - w1.mean(axis=0)), _t("ws1", rng.uniform(0.05, 0.3, size=(n_out, 1, 1, 1))),
        _t("bias1", rng.normal(size=n_out) * 0.3), helper.make_tensor("k", TensorProto.INT64, [1], [1]),
    ]  # fmt: skip
    nodes = [
        _quant("x", "xq", "xs", "b4", 0),
        _quant("W0", "W0q", "ws", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xq", "W0q"], ["h0"], name="Conv_0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h0"], ["h1"], name="Relu_0"),
        _quant("h1", "a0", "as", "b3", 0),
        _quant("W1", "W1q", "ws1", "b4", 1, narrow=1),
        helper.make_node("Conv", ["a0", "W1q"], ["z"], name="Conv_head", kernel_shape=[4, 4]),
        helper.make_node("Flatten", ["z"], ["zf"], name="Flatten_0"),
        helper.make_node("Add", ["zf", "bias1"], ["logits"], name="Bias_1"),
        helper.make_node("TopK", ["logits", "k"], ["values", "y"], name="TopK_0", axis=-1),
    ]
    g = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


def finn_head(seed: int = 0, n_out: int = 10) -> ModelWrapper:
    """FINN-ONNX style: UINT4-annotated integer input -> MatMul (INT3-annotated weights) ->
    MultiThreshold (2-bit) -> MatMul -> one-element Mul -> per-class Add -> TopK."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-3, 4, size=(20, 16)).astype(np.float64)
    w2 = rng.integers(-3, 4, size=(16, n_out)).astype(np.float64)
    centre = np.round(7.5 * w1.sum(axis=0))[:, None]  # thresholds around each channel's mean input
    thr = centre + np.sort(rng.integers(-80, 81, size=(16, 3)), axis=1).astype(np.float64)
    inits = [
        _t("W1", w1), _t("thr", thr), _t("W2", w2), _t("c_mul", 0.0625), _t("c_add", rng.normal(size=n_out) * 0.5),
        helper.make_tensor("k", TensorProto.INT64, [1], [1]),
    ]  # fmt: skip
    mt = {"domain": Q, "out_dtype": "UINT2"}
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="MatMul_0"),
        helper.make_node("MultiThreshold", ["h", "thr"], ["a"], name="MultiThreshold_0", **mt),
        helper.make_node("MatMul", ["a", "W2"], ["z"], name="MatMul_1"),
        helper.make_node("Mul", ["z", "c_mul"], ["zs"], name="Mul_0"),
        helper.make_node("Add", ["zs", "c_add"], ["logits"], name="Add_0"),
        helper.make_node("TopK", ["logits", "k"], ["values", "y"], name="TopK_0", axis=-1),
    ]
    model = _model(nodes, inits, 20, 1, TensorProto.INT64)
    model.set_tensor_datatype("x", DataType["UINT4"])
    model.set_tensor_datatype("W1", DataType["INT3"])
    model.set_tensor_datatype("W2", DataType["INT3"])
    return model


def _inputs(model: ModelWrapper, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = model.get_tensor_shape("x")[1:]
    if model.get_tensor_datatype("x") == DataType["UINT4"]:
        return rng.integers(0, 16, size=(n, *shape)).astype(np.float32)
    return (rng.integers(0, 16, size=(n, *shape)) / 15).astype(np.float32)


def _compile(tmp_path: Path, model: ModelWrapper, x: np.ndarray, name: str):
    path = tmp_path / f"{name}.onnx"
    model.save(str(path))
    build = tmp_path / name
    r = compile_model(path, build, inputs=x, opts=CompileOptions(target_cycles=400), verbose=False)
    return path, build, r


def _assert_reference_decisions(got: np.ndarray, path: Path, x: np.ndarray) -> None:
    """``got`` equals the decisions of qonnx's execution of the original file, in float32; where that
    differs, the input must lie within float noise of a rounding boundary (float32 and float64
    executions decide differently: flows/compile/verify.py's rule) and ``got`` equal the float64 decision."""
    model = ModelWrapper(str(path))
    want = decisions(run_qonnx(model, x))
    assert len(np.unique(want)) >= 3
    bad = np.flatnonzero(got != want)
    if len(bad):
        d64 = decisions(np.asarray(run_qonnx_double(model, x[bad])))
        np.testing.assert_array_equal(got[bad], d64)
        assert np.all(d64 != want[bad])
        assert len(bad) <= len(x) // 50


CASES = {
    "qkeras-bias": lambda: qkeras_mlp("bias"),
    "channel-scales": lambda: qkeras_mlp("channel_scales", seed=1),
    "mixed-signs": lambda: qkeras_mlp("mixed_signs", seed=2),
    "negative-scale": lambda: qkeras_mlp("negative", seed=4),
    "cnn-conv-head": lambda: conv_head(),
    "finn-per-class-add": lambda: finn_head(),
}


@pytest.mark.parametrize("name", list(CASES))
def test_per_class_head_compiles_to_label_select_exactly(tmp_path, name):
    """Label mode, every step verified; the compiled graph's decision on each of 400 inputs equals
    qonnx's execution of the original file (the argmax of its logits, or its TopK index)."""
    model = CASES[name]()
    x = _inputs(model, 400, seed=3)
    path, _build, r = _compile(tmp_path, model, x, name)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    df = ModelWrapper(str(r.dataflow))
    ls = [get_layer(n) for n in df.graph.node if n.op_type == "LabelSelect"]
    assert len(ls) == 1
    mul, off, shift = ls[0].class_map()
    assert any(m != 1 for m in mul) or any(off) or shift  # the per-class map is in the layer
    got = np.asarray(run_batched(df, x)).reshape(len(x)).astype(np.int64)
    _assert_reference_decisions(got, path, x)


@pytest.mark.rtl
def test_per_class_heads_simulate_bit_exact(tmp_path):
    """Two of the heads through the stitched RTL (Verilator): every hardware decision equals qonnx's
    execution of the original file."""
    from qnnflow.sim.stitch import simulate

    for name in ("channel-scales", "finn-per-class-add"):
        model = CASES[name]()
        x = _inputs(model, 200, seed=5)
        path, build, _r = _compile(tmp_path, model, x, name)
        sim = simulate(build, inputs=x, log=lambda _m: None)
        assert sim["mismatches"] == 0
        hw = decisions(np.load(Path(sim["results_dir"]) / "outputs.npy"))
        _assert_reference_decisions(hw, path, x)


def test_too_wide_map_is_refused_naming_node_width_and_logits(tmp_path):
    """Per-class scales many octaves apart with an offset far below them need more than 48 bits:
    refused, naming the node, the width, the limit and --logits."""
    model = qkeras_mlp("mixed_signs", seed=2)
    scales = np.array([1.0, 3e-7, 1.0, 0.5, -1.0, 1.0, 2.0, 1.0, 1.0, 1.0], dtype=np.float32)
    bias = np.full(10, 1e-9, dtype=np.float32)
    for init in model.graph.initializer:
        if init.name == "cls_scale":
            init.CopyFrom(_t("cls_scale", scales))
        if init.name == "bias1":
            init.CopyFrom(_t("bias1", bias))
    path = tmp_path / "wide.onnx"
    model.save(str(path))
    with pytest.raises(ValueError) as err:
        compile_model(path, tmp_path / "b", inputs=_inputs(model, 8, 0), verbose=False)
    text = str(err.value)
    assert "TopK_0 (TopK)" in text and "--logits" in text and f"at most {MAX_VALUE_BITS} bits" in text
    bits = int(text.split("compare exactly only as ")[1].split("-bit")[0])
    assert bits > MAX_VALUE_BITS


# -- the map itself, against exact rational arithmetic ---------------------------------------------


def _exact_argmax(a, b, acc) -> int:
    logits = [ac * int(x) + bc for ac, bc, x in zip(a, b, acc, strict=True)]
    return max(range(len(logits)), key=lambda c: (logits[c], -c))


@pytest.mark.parametrize("kind", ["uniform-offsets", "uniform-negative", "per-class", "zeros", "thirds"])
def test_class_order_map_orders_as_exact_logits(kind):
    """Every decision of kernels.label_select with the map equals the argmax of the exact rational
    logits, on random accumulators and on pairs built to tie after the map."""
    rng = np.random.default_rng(11)
    c, lo, hi = 6, -40, 40
    fr = [Fraction(float(np.float32(v))) for v in rng.normal(size=c)]
    if kind == "uniform-offsets":
        a, b = [Fraction(1, 32)] * c, fr
        b[4] = b[1] + Fraction(3, 32)  # ties: acc_4 = acc_1 - 3
    elif kind == "uniform-negative":
        a, b = [Fraction(-3, 16)] * c, [x / 7 for x in fr]
    elif kind == "per-class":
        a = [Fraction(float(np.float32(v))) for v in rng.uniform(-1, 1, c)]
        b = fr
    elif kind == "zeros":
        a = [Fraction(0), Fraction(1, 4), Fraction(-1, 4), Fraction(0), Fraction(1, 2), Fraction(1, 4)]
        b = [Fraction(1), Fraction(1, 8), Fraction(0), Fraction(1), Fraction(-1, 3), Fraction(1, 8)]
    else:  # Div by 3 and 7: denominators other than powers of two
        a = [Fraction(1, 3), Fraction(2, 7), Fraction(1, 3), Fraction(-1, 7), Fraction(1, 21), Fraction(2, 3)]
        b = [Fraction(k, 21) for k in (1, -2, 0, 5, 3, 1)]
    cmap = class_order_map(a, b, lo, hi, "test")
    accs = rng.integers(lo, hi + 1, size=(3000, c))
    # pairs of classes at every accumulator pair: the ties the map must keep (lowest index)
    grid = np.array(list(itertools.product(range(lo, hi + 1, 3), repeat=2)))
    for c0, c1 in ((0, 1), (1, 4), (2, 5), (0, 3)):
        block = np.full((len(grid), c), lo)
        block[:, c0], block[:, c1] = grid[:, 0], grid[:, 1]
        accs = np.concatenate([accs, block])
    got = kernels.label_select(accs, 1, np.array(cmap.mul), np.array(cmap.offset), cmap.shift)[:, 0]
    want = np.array([_exact_argmax(a, b, row) for row in accs])
    np.testing.assert_array_equal(got, want)


def test_compose_matches_the_steps_exactly():
    """Mul, Add, Sub (both ways), Div and BatchNormalization by per-class constants compose to the
    same affine map as applying them one by one in rationals."""
    c = 3
    bn = [np.array([0.5, 2.0, -1.0]), np.array([0.25, 0.0, 1.0]), np.array([1.0, -1.0, 0.5]), np.array([3.0, 0.0, 1.0])]
    steps = [
        ("Mul", [None, np.array([0.5, -2.0, 3.0])], {}), ("Add", [None, np.array(0.125)], {}),
        ("Sub", [np.array([1.0, 2.0, 4.0]), None], {}), ("Div", [None, np.array([4.0, 0.5, -8.0])], {}),
        ("BatchNormalization", [None, *bn], {"epsilon": 1.0}),
    ]  # fmt: skip
    a, b = compose(steps, c)
    for x in (-7, 0, 5):
        for k in range(c):
            v = Fraction(x)
            v = v * Fraction(float(steps[0][1][1][k])) + Fraction(1, 8)
            v = Fraction(float(steps[2][1][0][k])) - v
            v = v / Fraction(float(steps[3][1][1][k]))
            s = Fraction(float(bn[0][k] / np.sqrt(bn[3][k] + 1.0)))
            v = (v - Fraction(float(bn[2][k]))) * s + Fraction(float(bn[1][k]))
            assert a[k] * x + b[k] == v
    assert compose([("Relu", [None], {})], c) is None
    assert compose([("Div", [np.array(2.0), None], {})], c) is None


@pytest.mark.parametrize("name", ["qkeras-bias", "mixed-signs"])
def test_label_select_estimate_assumes_the_parameters_codegen_gives(tmp_path, name):
    """resources.layer_params of a LabelSelect with a map (offsets and a shift; multipliers) are the HDL
    parameters codegen instantiates, and its memory files hold the layer's constants."""
    from qnnflow.flows.codegen import generate, memfiles
    from qnnflow.flows.compile.resources import layer_params

    model = CASES[name]()
    _path, _build, r = _compile(tmp_path, model, _inputs(model, 40, 1), name)
    df = ModelWrapper(str(r.dataflow))
    design = generate(df, tmp_path / "rtl")
    (lay,) = [lay for lay in design.layers if lay["op_type"] == "LabelSelect"]
    layer = get_layer(next(n for n in df.graph.node if n.name == lay["name"]))
    module, params = layer_params(layer)
    assert module == "label_select" and all(lay["params"][k] == v for k, v in params.items())
    mul, off, _ = layer.class_map()
    p = lay["params"]
    files = (("HAS_MUL", "MUL_FILE", "MUL_W", mul), ("HAS_OFFSET", "OFFSET_FILE", "OFF_W", off))
    for flag, key, width, values in files:
        if p[flag]:
            words = memfiles.read_memh(tmp_path / "rtl" / p[key])
            got = memfiles.thresholds_from_words(words, len(values), 1, p["PE"], p[width]).ravel()
            np.testing.assert_array_equal(got, values)
    assert p["HAS_MUL"] == (name == "mixed-signs") and p["HAS_OFFSET"] == 1
