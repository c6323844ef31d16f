"""Third-party export patterns, built with ``onnx.helper`` as QKeras / hls4ml / Brevitas write them,
compiled with every step verified and compared decision for decision with qonnx's execution of the
original file (the third-party models issue): monotonic activations before a quantizer (LeakyReLU,
PReLU, Sigmoid, Tanh, HardSigmoid, Clip) become thresholds; classifier heads (Softmax, LogSoftmax,
Sigmoid) at the output are removed; a float input with no quantizer takes a declared grid; ops the
compiler cannot lower are all named before qonnx's cleanup runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions, OutputMode
from qnnflow.flows.ir.execute import run_batched
from qnnflow.flows.ir.reference import decisions, run_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import Q
from tests.flows.helpers import quant as _quant
from tests.flows.helpers import tensor as _t


# activation -> (node builder on input h, output a; extra initializers; is the quantizer after it signed)
def _activation(kind: str, h: str, a: str, width: int, rng) -> tuple[list, list, int]:
    if kind == "LeakyRelu":
        return [helper.make_node("LeakyRelu", [h], [a], name="Act", alpha=0.125)], [], 1
    if kind == "PRelu":
        slope = rng.uniform(0.05, 0.5, width)
        return [helper.make_node("PRelu", [h, "slope"], [a], name="Act")], [_t("slope", slope)], 1
    if kind == "Sigmoid":
        return [helper.make_node("Sigmoid", [h], [a], name="Act")], [], 0
    if kind == "Tanh":
        return [helper.make_node("Tanh", [h], [a], name="Act")], [], 1
    if kind == "HardSigmoid":
        return [helper.make_node("HardSigmoid", [h], [a], name="Act", alpha=0.25, beta=0.5)], [], 0
    if kind == "Clip":  # hard tanh with opset-13 operands
        return [helper.make_node("Clip", [h, "lo", "hi"], [a], name="Act")], [_t("lo", -1.0), _t("hi", 1.0)], 1
    raise AssertionError(kind)


def mlp(
    acts: list[str],
    head: str | None = None,
    quant_input: bool = True,
    n_in: int = 16,
    width: int = 12,
    n_out: int = 10,
    seed: int = 0,
) -> ModelWrapper:
    """x (n_in) -> [Quant 4-bit unsigned, scale 1/15] -> per activation: MatMul(Quant 4-bit W) ->
    BatchNorm -> activation -> Quant 3-bit (signed after a signed activation) -> MatMul(Quant 4-bit W)
    -> [head] -> y (n_out)."""
    rng = np.random.default_rng(seed)
    inits = [_t("zero", 0.0), _t("b4", 4), _t("b3", 3), _t("ws", 1 / 8), _t("xs", 1 / 15)]
    nodes = []
    cur, fan_in = "x", n_in
    if quant_input:
        nodes.append(_quant("x", "xq", "xs", "b4", 0))
        cur = "xq"
    for i, kind in enumerate(acts):
        w = f"W{i}"
        inits += [
            _t(w, _centred(rng, fan_in, width)), _t(f"bn_s{i}", rng.uniform(0.3, 1.5, width)),
            _t(f"bn_b{i}", rng.normal(size=width) * 0.2), _t(f"bn_m{i}", rng.normal(size=width) * 0.3),
            _t(f"bn_v{i}", rng.uniform(0.3, 1, width)), _t(f"as{i}", 0.25),
        ]  # fmt: skip
        nodes += [
            _quant(w, f"{w}q", "ws", "b4", 1, narrow=1),
            helper.make_node("MatMul", [cur, f"{w}q"], [f"h{i}"], name=f"FC_{i}"),
            helper.make_node(
                "BatchNormalization", [f"h{i}", *(f"bn_{k}{i}" for k in "sbmv")], [f"n{i}"], name=f"BN_{i}"
            ),
        ]
        act_nodes, act_inits, signed = _activation(kind, f"n{i}", f"a{i}", width, rng)
        for n in act_nodes:
            n.name = f"{kind}_{i}"
        for init in act_inits:
            init.name = f"{init.name}{i}"
        for n in act_nodes:
            n.input[:] = [n.input[0]] + [f"{x}{i}" for x in n.input[1:]]
        nodes += act_nodes
        inits += act_inits
        # sigmoid-like outputs lie in [0, 1]: a finer scale uses the 3 bits
        scale = "as_fine" if kind in ("Sigmoid", "HardSigmoid", "Tanh") else f"as{i}"
        nodes.append(_quant(f"a{i}", f"q{i}", scale, "b3", signed))
        cur, fan_in = f"q{i}", width
    inits += [_t("as_fine", 1 / 7), _t("Wout", _centred(rng, fan_in, n_out))]
    nodes += [
        _quant("Wout", "Woutq", "ws", "b4", 1, narrow=1),
        helper.make_node("MatMul", [cur, "Woutq"], ["logits" if head else "y"], name="FC_out"),
    ]
    if head == "Softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], name="Softmax_head", axis=-1))
    elif head == "LogSoftmax":
        nodes.append(helper.make_node("LogSoftmax", ["logits"], ["y"], name="LogSoftmax_head", axis=1))
    elif head == "Sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["y"], name="Sigmoid_head"))
    g = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])], initializer=inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]
    return ModelWrapper(helper.make_model(g, opset_imports=opsets))


def _centred(rng, rows: int, cols: int) -> np.ndarray:
    """Weights whose columns sum to about zero: with all-positive activations (after a Sigmoid) the
    logits then vary with the input instead of being the same column sums times a constant."""
    w = rng.normal(size=(rows, cols)) * 0.4  # within the 4-bit weight range (7/8) mostly
    return w - w.mean(axis=0, keepdims=True)


def _inputs(n: int = 300, n_in: int = 16, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).integers(0, 16, size=(n, n_in)) / 15).astype(np.float32)


def _compile_and_compare(model: ModelWrapper, tmp_path: Path, x: np.ndarray, **opts):
    path = tmp_path / "model.onnx"
    model.save(str(path))
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=300, **opts), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    got = run_batched(ModelWrapper(str(r.dataflow)), x)
    want = decisions(run_qonnx(ModelWrapper(str(path)), x))  # the original file, head included
    return r, got, want


def _lsb(kind: str) -> float:
    """The step of the logits: last activation scale times the weight scale."""
    return (1 / 7 if kind in ("Sigmoid", "HardSigmoid", "Tanh") else 0.25) / 8


@pytest.mark.parametrize("kind", ["LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "Clip"])
def test_monotonic_activation_before_a_quantizer_becomes_thresholds(tmp_path, kind):
    """Two hidden layers with the activation, in logits mode: every logit of the hardware graph, in
    steps of its LSB, equals the original's exactly (a threshold one step off changes a logit)."""
    model = mlp([kind, kind])
    x = _inputs()
    r, got, want = _compile_and_compare(model, tmp_path, x, output=OutputMode.LOGITS)
    lsb = _lsb(kind)
    got_int = np.round(np.asarray(got, dtype=np.float64).reshape(len(x), -1) / lsb).astype(np.int64)
    want_int = np.round(run_qonnx(model, x).astype(np.float64) / lsb).astype(np.int64)
    np.testing.assert_array_equal(got_int, want_int)
    assert np.allclose(np.asarray(got, np.float64).reshape(len(x), -1), run_qonnx(model, x), rtol=0, atol=lsb / 100)
    assert len(np.unique(want_int)) > 20  # the logits vary with the input
    ops = [layer["op_type"] for layer in r.estimates["layers"]]
    assert ops.count("MVAU") == 3  # every activation went into its layer's thresholds
    # the activations really are in use: both layers' quantized outputs take several levels
    _, kept = run_qonnx(model, x, keep={"q0", "q1"})
    assert len(np.unique(kept["q0"])) >= 4 and len(np.unique(kept["q1"])) >= 4


@pytest.mark.parametrize("kind", ["LeakyRelu", "PRelu"])
def test_negative_slope_is_refused_as_non_monotonic(tmp_path, kind):
    model = mlp([kind])
    act = next(n for n in model.graph.node if n.op_type == kind)
    if kind == "LeakyRelu":
        act.attribute[0].f = -0.5
    else:
        model.set_initializer("slope0", -np.abs(model.get_initializer("slope0")))
    path = tmp_path / "m.onnx"
    model.save(str(path))
    with pytest.raises(ValueError, match=rf"{kind}_0 \({kind}\): a negative slope .* non-monotonic"):
        compile_model(path, tmp_path / "b", inputs=_inputs(20), verbose=False)
    assert not (tmp_path / "b" / "dataflow.onnx").exists()


@pytest.mark.parametrize("head", ["Softmax", "LogSoftmax", "Sigmoid"])
def test_classifier_head_is_removed_in_label_mode(tmp_path, head, capsys):
    model = mlp(["LeakyRelu"], head=head)
    x = _inputs()
    path = tmp_path / "model.onnx"
    model.save(str(path))
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=300), verbose=True)
    assert f"classifier head {head}_head ({head}) removed" in capsys.readouterr().out
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    np.testing.assert_array_equal(got, decisions(run_qonnx(ModelWrapper(str(path)), x)))
    ver = json.loads((tmp_path / "b" / "verification.json").read_text())
    assert head in ver["head"]


def test_head_in_logits_mode_returns_the_logits_before_it(tmp_path, capsys):
    model = mlp(["LeakyRelu"], head="Softmax")
    x = _inputs(100)
    path = tmp_path / "model.onnx"
    model.save(str(path))
    r = compile_model(
        path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=300, output=OutputMode.LOGITS), verbose=True
    )
    assert "the hardware returns the logits before it" in capsys.readouterr().out
    # the logits are the original's before its Softmax (an independent qonnx run of the original with
    # the Softmax's input kept), in steps of their LSB exactly
    _, kept = run_qonnx(ModelWrapper(str(path)), x, keep={"logits"})
    got = np.asarray(run_batched(ModelWrapper(str(r.dataflow)), x), dtype=np.float64).reshape(len(x), -1)
    lsb = _lsb("LeakyRelu")
    np.testing.assert_array_equal(np.round(got / lsb), np.round(kept["logits"].astype(np.float64) / lsb))
    assert np.allclose(got, kept["logits"], rtol=0, atol=lsb / 100)


def test_softmax_inside_the_graph_is_named(tmp_path):
    model = mlp(["LeakyRelu"])
    # a Softmax between the hidden layer and its quantizer is not a head
    act = next(n for n in model.graph.node if n.op_type == "LeakyRelu")
    model.graph.node.insert(
        list(model.graph.node).index(act) + 1, helper.make_node("Softmax", ["a0"], ["sm"], name="Softmax_mid", axis=1)
    )
    next(n for n in model.graph.node if n.name == "Quant_q0").input[0] = "sm"
    path = tmp_path / "m.onnx"
    model.save(str(path))
    with pytest.raises(ValueError, match=r"Softmax_mid \(Softmax\): Softmax is taken only as the classifier head"):
        compile_model(path, tmp_path / "b", inputs=_inputs(10), verbose=False)


@pytest.mark.parametrize("spec", ["pixels", "uint8", "bits=6,signed=1,scale=1/32"])
def test_float_input_with_a_declared_grid(tmp_path, spec):
    model = mlp(["LeakyRelu"], quant_input=False)
    path = tmp_path / "m.onnx"
    model.save(str(path))
    rng = np.random.default_rng(5)
    if spec == "pixels":
        x = (rng.integers(0, 256, size=(300, 16)) / 255).astype(np.float32)
    elif spec == "uint8":
        x = (rng.integers(0, 256, size=(300, 16)) / 20).round().astype(np.float32)  # integers 0..12
    else:
        x = (rng.integers(-32, 32, size=(300, 16)) / 32).astype(np.float32)
    # without the option: refused, naming the option
    with pytest.raises(ValueError, match=r"its input is not quantized.*--input-grid"):
        compile_model(path, tmp_path / "no", inputs=x, verbose=False)
    r = compile_model(
        path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=300, input_grid=spec), verbose=False
    )
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    np.testing.assert_array_equal(got, decisions(run_qonnx(ModelWrapper(str(path)), x)))  # the original, no grid
    assert len(np.unique(got)) > 3
    ver = json.loads((tmp_path / "b" / "verification.json").read_text())
    assert Path(ver["model"]).name == "source_with_input_grid.onnx" and Path(ver["model"]).is_file()
    # inputs off the grid: the index, the grid and the value
    off = x.copy()
    off[3, 2] = 0.5 / 255 if spec == "pixels" else 0.3 if spec == "uint8" else 1 / 64
    with pytest.raises(ValueError, match=r"at index \(3, 2\) is not on the model's input grid"):
        compile_model(
            path, tmp_path / "off", inputs=off, opts=CompileOptions(target_cycles=300, input_grid=spec), verbose=False
        )


@pytest.mark.parametrize("spec", ["pixel", "bits=x", "bits=8,scale=0", "bits=40", "int99", "scale=1"])
def test_bad_input_grid_spec_says_what_is_accepted(spec):
    with pytest.raises(ValueError, match=r"--input-grid"):
        CompileOptions(input_grid=spec)


def test_input_grid_on_a_quantized_input_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    mlp(["LeakyRelu"]).save(str(path))
    with pytest.raises(ValueError, match=r"already quantizes its input \(Quant_0 \(Quant: 4-bit"):
        compile_model(path, tmp_path / "b", inputs=_inputs(10), opts=CompileOptions(input_grid="pixels"), verbose=False)


def test_unsupported_ops_are_all_named_before_cleanup(tmp_path, monkeypatch):
    """A separable-conv model with a LeakyReLU, a depthwise Conv of depth multiplier 2, an Erf and a
    Pad: one message names them all, and qonnx's cleanup (shape inference on the feature maps) never runs."""
    import qonnx.util.cleanup

    rng = np.random.default_rng(0)
    inits = [
        _t("zero", 0.0), _t("b4", 4), _t("s", 1 / 8), _t("dw", rng.normal(size=(16, 1, 3, 3))),
        _t("pw", rng.normal(size=(4, 16, 1, 1))), _t("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1])),
    ]  # fmt: skip
    inits[-1] = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    nodes = [
        _quant("x", "xq", "s", "b4", 0),
        helper.make_node("Pad", ["xq", "pads"], ["xp"], name="Pad_0"),
        _quant("dw", "dwq", "s", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xp", "dwq"], ["d"], name="Depthwise_0", group=8, kernel_shape=[3, 3]),
        helper.make_node("Erf", ["d"], ["e"], name="Erf_0"),
        _quant("pw", "pwq", "s", "b4", 1, narrow=1),
        helper.make_node("Conv", ["e", "pwq"], ["p"], name="Pointwise_0", kernel_shape=[1, 1]),
        helper.make_node("LeakyRelu", ["p"], ["y"], name="LeakyRelu_0"),
    ]
    g = helper.make_graph(
        nodes, "sep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 64, 64])], initializer=inits,
    )  # fmt: skip
    path = tmp_path / "sep.onnx"
    ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)])).save(
        str(path)
    )

    def no_cleanup(*_a, **_k):
        raise AssertionError("cleanup ran before the op check")

    monkeypatch.setattr(qonnx.util.cleanup, "cleanup_model", no_cleanup)
    with pytest.raises(ValueError) as err:
        compile_model(path, tmp_path / "b", verbose=False)
    text = str(err.value)
    depthwise = "Depthwise_0 (Conv): depthwise convolution with depth multiplier 2 (group 8, 16 output channels)"
    for name in ("Pad_0 (Pad)", depthwise, "Erf_0 (Erf)"):
        assert name in text
    assert "LeakyRelu_0" not in text  # supported (a monotonic activation); the others are what stop it


def finn_bnn(out_scale: float = 0.5, seed: int = 0) -> ModelWrapper:
    """A FINN-ONNX binarized MLP as FINN's TFC-w1a1 export writes it: MultiThreshold activations with
    one threshold, out_scale 2 and out_bias -1 (bipolar values), MatMuls with BIPOLAR-annotated
    weights, BatchNormalization, and a tail of one-element Sub, Div, Mul, Add before TopK."""
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(seed)
    w1 = rng.choice([-1.0, 1.0], size=(64, 32))
    w2 = rng.choice([-1.0, 1.0], size=(32, 10))
    inits = [
        _t("thr0", np.full((64, 1), 0.5)), _t("W1", w1), _t("bn_s", rng.uniform(0.5, 2, 32)),
        _t("bn_b", rng.normal(size=32)), _t("bn_m", rng.normal(size=32) * 2), _t("bn_v", rng.uniform(1, 9, 32)),
        _t("thr1", np.zeros((32, 1))), _t("W2", w2), _t("c_sub", 3.0), _t("c_div", 4.0), _t("c_mul", out_scale),
        _t("c_add", 0.25), helper.make_tensor("k", TensorProto.INT64, [1], [1]),
    ]  # fmt: skip
    mt = {"domain": Q, "out_scale": 2.0, "out_bias": -1.0, "out_dtype": "BIPOLAR"}
    nodes = [
        helper.make_node("MultiThreshold", ["x", "thr0"], ["a0"], name="MultiThreshold_in", **mt),
        helper.make_node("MatMul", ["a0", "W1"], ["h"], name="MatMul_0"),
        helper.make_node("BatchNormalization", ["h", "bn_s", "bn_b", "bn_m", "bn_v"], ["n"], name="BN_0"),
        helper.make_node("MultiThreshold", ["n", "thr1"], ["a1"], name="MultiThreshold_1", **mt),
        helper.make_node("MatMul", ["a1", "W2"], ["y0"], name="MatMul_1"),
        helper.make_node("Sub", ["y0", "c_sub"], ["y1"], name="Sub_0"),
        helper.make_node("Div", ["y1", "c_div"], ["y2"], name="Div_0"),
        helper.make_node("Mul", ["y2", "c_mul"], ["y3"], name="Mul_0"),
        helper.make_node("Add", ["y3", "c_add"], ["y4"], name="Add_0"),
        helper.make_node("TopK", ["y4", "k"], ["values", "y"], name="TopK_0", axis=-1),
    ]
    g = helper.make_graph(
        nodes, "tfc_w1a1", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1])], initializer=inits,
    )  # fmt: skip
    model = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11), helper.make_opsetid(Q, 1)]))
    for w in ("W1", "W2"):
        model.set_tensor_datatype(w, DataType["BIPOLAR"])
    return model


@pytest.mark.parametrize("out_scale", [0.5, -0.5])
def test_finn_onnx_bipolar_activations_compile_to_xnor_layers(tmp_path, out_scale):
    """FINN-ONNX's {0, 1}-thresholds with out_scale 2, out_bias -1 are bipolar activations: the layers
    after them are XNOR-popcounts with no per-class offset, so TopK becomes label selection (before,
    it was refused: "label selection needs one positive scale and offset for all classes"). A negative
    scale in the tail (out_scale -0.5) selects the smallest accumulator: the last rows are negated."""
    model = finn_bnn(out_scale)
    x = np.random.default_rng(2).random((300, 64)).astype(np.float32)
    path = tmp_path / "tfc_w1a1.onnx"
    model.save(str(path))
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=200), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    want = run_qonnx(ModelWrapper(str(path)), x).reshape(len(x))  # TopK's index, from qonnx
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) >= 5
    df = ModelWrapper(str(r.dataflow))
    mvaus = [n for n in df.graph.node if n.op_type == "MVAU"]
    assert len(mvaus) == 2
    from qnnflow.flows.ir.layers import get_layer

    # both layers read bipolar activations with bipolar weights: the XNOR-popcount form
    assert all(get_layer(n).attrs["inputDataType"] == "BIPOLAR" for n in mvaus)
    assert all(get_layer(n).attrs["weightDataType"] == "BIPOLAR" for n in mvaus)


@pytest.mark.rtl
def test_third_party_patterns_simulate_bit_exact(tmp_path):
    """Through the stitched RTL (Verilator): a float-input model with a declared pixel grid, a
    LeakyReLU layer, a Tanh layer and a Softmax head; and the FINN-ONNX bipolar MLP. Every hardware
    decision equals qonnx's execution of the original file."""
    from qnnflow.sim.stitch import simulate

    rng = np.random.default_rng(7)
    cases = [
        (mlp(["LeakyRelu", "Tanh"], head="Softmax", quant_input=False), "pixels"),
        (finn_bnn(-0.5), None),
    ]
    for i, (model, grid) in enumerate(cases):
        path = tmp_path / f"m{i}.onnx"
        model.save(str(path))
        n_in = model.get_tensor_shape("x")[1]
        x = (rng.integers(0, 256, size=(64, n_in)) / 255).astype(np.float32)
        build = tmp_path / f"b{i}"
        compile_model(path, build, inputs=x, opts=CompileOptions(target_cycles=100, input_grid=grid), verbose=False)
        sim = simulate(build, inputs=x, log=lambda _m: None)
        assert sim["mismatches"] == 0
        hw = decisions(np.load(Path(sim["results_dir"]) / "outputs.npy"))
        np.testing.assert_array_equal(hw, decisions(run_qonnx(ModelWrapper(str(path)), x)))
        assert len(np.unique(hw)) >= 3


def bipolar_input_mlp(seed: int = 0) -> ModelWrapper:
    """x (24) -> BipolarQuant -> per-feature Mul, Add -> Quant 2-bit unsigned -> Gemm(Quant 3-bit W)
    -> y (6): the requantization of the bipolar input is a Thresholding layer on a BIPOLAR stream."""
    rng = np.random.default_rng(seed)
    inits = [
        _t("zero", 0.0), _t("one", 1.0), _t("b2", 2), _t("b3", 3), _t("ws", 0.25), _t("as", 0.5),
        _t("mul", rng.uniform(0.2, 1.5, 24)), _t("add", rng.uniform(-0.5, 1.5, 24)), _t("W", rng.normal(size=(6, 24))),
    ]  # fmt: skip
    nodes = [
        helper.make_node("BipolarQuant", ["x", "one"], ["xb"], domain=Q, name="Sign_in"),
        helper.make_node("Mul", ["xb", "mul"], ["m"], name="Scale_0"),
        helper.make_node("Add", ["m", "add"], ["s"], name="Shift_0"),
        _quant("s", "a", "as", "b2", 0),
        _quant("W", "Wq", "ws", "b3", 1, narrow=1),
        helper.make_node("Gemm", ["a", "Wq"], ["y"], name="Gemm_0", transB=1),
    ]
    g = helper.make_graph(
        nodes, "bip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


@pytest.mark.rtl
def test_thresholding_on_a_bipolar_stream_simulates_bit_exact(tmp_path):
    """Before: compiled, then `qnnflow sim` refused it ("hw/thresholding.sv takes integer inputs, not
    BIPOLAR"). Now the Thresholding takes the bipolar stream (one bit per element), and compile checks
    every layer against its RTL backend before it writes dataflow.onnx."""
    from qnnflow.flows.ir.layers import get_layer
    from qnnflow.sim.stitch import simulate

    path = tmp_path / "bip.onnx"
    bipolar_input_mlp().save(str(path))
    x = np.random.default_rng(3).normal(size=(80, 24)).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=60), verbose=False)
    thr = [n for n in ModelWrapper(str(r.dataflow)).graph.node if n.op_type == "Thresholding"]
    assert thr and get_layer(thr[0]).attrs["inputDataType"] == "BIPOLAR"
    sim = simulate(tmp_path / "b", inputs=x, log=lambda _m: None)
    assert sim["mismatches"] == 0
    hw = decisions(np.load(Path(sim["results_dir"]) / "outputs.npy"))
    np.testing.assert_array_equal(hw, decisions(run_qonnx(ModelWrapper(str(path)), x)))
    assert len(np.unique(hw)) >= 3


def test_compile_refuses_a_layer_its_rtl_backend_cannot_build(tmp_path, monkeypatch):
    """The backend check runs inside compile: a layer the RTL library refuses stops the compile with
    the backend's message, and no dataflow.onnx is left behind."""
    import qnnflow.flows.codegen.backends as rb

    def refuse(layer, model, prefix):
        raise ValueError(f"{layer.where}: hw/thresholding.sv cannot take this (test)")

    monkeypatch.setitem(rb._BACKENDS, "Thresholding", refuse)
    path = tmp_path / "bip.onnx"
    bipolar_input_mlp().save(str(path))
    x = np.random.default_rng(3).normal(size=(10, 24)).astype(np.float32)
    with pytest.raises(ValueError, match=r"cannot be built from the RTL library: .*Thresholding.*cannot take this"):
        compile_model(path, tmp_path / "b", inputs=x, verbose=False)
    assert not (tmp_path / "b" / "dataflow.onnx").exists()


@pytest.mark.parametrize("bits", [9, 16])
def test_activation_wider_than_thresholds_serve_is_refused_in_bounded_memory(tmp_path, bits):
    """A 16-bit activation once made the threshold check try to allocate 96 GiB (probes x channels x
    65,535 thresholds: a MemoryError); now it is refused at once, naming the node, the levels and the
    limit. 8 bits compile (next test)."""
    model = mlp(["LeakyRelu"])
    model.set_initializer("b3", np.array(float(bits), dtype=np.float32))
    path = tmp_path / "m.onnx"
    model.save(str(path))
    with pytest.raises(ValueError, match=rf"Quant_q0 \(Quant\): this activation has {2**bits:,} levels.*up to 8 bits"):
        compile_model(path, tmp_path / "b", inputs=_inputs(20), verbose=False)


def test_eight_bit_activation_thresholds_are_checked_exactly(tmp_path):
    model = mlp(["LeakyRelu"])
    model.set_initializer("b3", np.array(8.0, dtype=np.float32))
    x = _inputs(200)
    r, got, want = _compile_and_compare(model, tmp_path, x, output=OutputMode.LOGITS)
    lsb = 0.25 / 8
    np.testing.assert_array_equal(
        np.round(np.asarray(got, np.float64).reshape(len(x), -1) / lsb), np.round(run_qonnx(model, x) / lsb)
    )


def test_an_unnamed_unsupported_node_is_named_by_its_place(tmp_path):
    """Exporters often leave nodes unnamed; the check before cleanup still says which one."""
    model = mlp(["LeakyRelu"])
    act = next(n for n in model.graph.node if n.op_type == "LeakyRelu")
    act.op_type, act.name = "Erf", ""
    del act.attribute[:]
    path = tmp_path / "m.onnx"
    model.save(str(path))
    with pytest.raises(ValueError, match=r"cannot lower: unnamed Erf node no\. 1 in file order\. Supported"):
        compile_model(path, tmp_path / "b", inputs=_inputs(10), verbose=False)
