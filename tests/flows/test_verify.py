"""The compiler's verification: an integer difference anywhere fails the compile, naming the step,
the tensor, the element and both values; integers are executed exactly at any width up to 32 bits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import STEPS, CompileOptions, OutputMode
from qnnflow.flows.compile.verify import VerificationError, summary
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.execute import Executor
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """The digits CNN w2a2 with random weights and BatchNorm statistics, and random pixel inputs."""
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    folder = tmp_path_factory.mktemp("digits")
    shape = parse_preset("digits-cnn-w2a2").input_shape
    path = export_qonnx(random_model("digits-cnn-w2a2", seed=3), folder / "model.onnx", shape)
    x = (np.random.default_rng(0).integers(0, 17, size=(60, *shape)) / 16).astype(np.float32)
    return path, x


def test_verification_json_records_exact_comparisons(tmp_path, digits_model):
    path, x = digits_model
    compile_model(path, tmp_path, inputs=x, verbose=False)
    ver = json.loads((tmp_path / "verification.json").read_text())
    steps = {s["step"]: s for s in ver["steps"]}
    assert [s["step"] for s in ver["steps"]] == [name for name, _ in STEPS]
    # logits as integers right after streamlining, integer tensors against the previous step after it
    assert "logits" in steps["streamline"]["compared"]
    assert steps["streamline"]["logits"]["reference_grid_error"] < 0.5
    for name in ("label_select", "hw_layers"):
        assert "integers" in steps[name]["compared"], name
        assert steps[name]["integer_tensors_exact"] >= 3
        assert all(t["elements"] > 0 for t in steps[name]["integer_tensors"])
    assert steps["streams"]["compared"] == ["unchanged"]  # FIFOs only: not executed again, proven equal
    assert ver["summary"] == summary(ver)
    assert ver["summary"].startswith(f"{len(STEPS)} steps verified on 60 inputs: decisions identical")


def _perturb_threshold(before: ModelWrapper, after: ModelWrapper, x: np.ndarray) -> str:
    """Raise one threshold of a mid-graph MultiThreshold of ``after`` by one, at a value its input
    really takes, so that its output changes by one LSB on some input; returns that output's name."""
    shared = {t for n in before.graph.node for t in n.output}
    ctx = Executor(after).run(x, keep=True)
    mts = [n for n in after.graph.node if n.op_type == "MultiThreshold" and n.output[0] in shared]
    assert len(mts) >= 2, "the digits CNN has several activations"
    mt = mts[1]  # not the first quantizer: a tensor in the middle of the graph
    thr = after.get_initializer(mt.input[1]).copy()
    acc = np.moveaxis(np.asarray(ctx[mt.input[0]]), 1, -1).reshape(-1, thr.shape[0])
    for c in range(thr.shape[0]):
        for j in range(thr.shape[1]):
            if np.any(acc[:, c] == thr[c, j]):
                thr[c, j] += 1
                after.set_initializer(mt.input[1], thr)
                return mt.output[0]
    raise AssertionError("no threshold is hit by the inputs")


def test_one_lsb_change_mid_graph_fails_naming_step_and_tensor(tmp_path, digits_model, monkeypatch):
    path, x = digits_model
    i = [name for name, _ in STEPS].index("integer_cleanup")
    name, step = STEPS[i]
    hit = {}

    def broken(model, opts):
        before = ModelWrapper(model.model.__deepcopy__())
        after = step(model, opts)
        hit["tensor"] = _perturb_threshold(before, after, x)
        return after

    steps = list(STEPS)
    steps[i] = (name, broken)
    monkeypatch.setattr("qnnflow.flows.compile.driver.STEPS", steps)
    with pytest.raises(VerificationError) as err:
        compile_model(path, tmp_path, inputs=x, verbose=False)
    msg = str(err.value)
    assert msg.startswith("step integer_cleanup: integer tensor ")
    assert hit["tensor"] in msg and "differs from the previous step (streamline)" in msg
    assert "(MultiThreshold)" in msg and "now," in msg


def _wide_layer(mh: int = 3) -> tuple[ModelWrapper, np.ndarray]:
    """x (1, 784) UINT8 -> MatMul with INT8 weights -> Mul 1/1024 -> logits."""
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, size=(784, mh)).astype(np.float32)
    w[:, 0] = 127  # column 0 reaches 784 * 255 * 127 = 25,389,840 > 2**24 on an all-255 input
    inits = [
        helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
        helper.make_tensor("s", TensorProto.FLOAT, [], [1 / 1024]),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["acc"], name="MatMul_0"),
        helper.make_node("Mul", ["acc", "s"], ["y"], name="Mul_0"),
    ]
    g = helper.make_graph(
        nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, mh])], initializer=inits,
    )  # fmt: skip
    model = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    model.set_tensor_datatype("x", DataType["UINT8"])
    model.set_tensor_datatype("W", DataType["INT8"])
    x = rng.integers(0, 256, size=(40, 784)).astype(np.float32)
    x[0] = 255
    x[1] = 255
    x[1, 0] = 254  # an odd accumulator above 2**24: float32 cannot hold it
    return model, x


def test_8bit_784_input_layer_above_2_pow_24_is_exact(tmp_path):
    model, x = _wide_layer()
    w = model.get_initializer("W").astype(np.int64)
    want = x.astype(np.int64) @ w
    assert want[1, 0] > 1 << 24 and want[1, 0] % 2 == 1
    assert float(np.float32(want[1, 0])) != want[1, 0]  # float32 would lose it
    acc = Executor(model).run(x, keep=True)["acc"]
    np.testing.assert_array_equal(np.asarray(acc).astype(np.int64), want)
    np.testing.assert_array_equal(kernels.mvau(x, w.T), want)
    r = compile_model(model, tmp_path, inputs=x, opts=CompileOptions(output=OutputMode.LOGITS), verbose=False)
    df = ModelWrapper(str(r.dataflow))
    mvau = [n for n in df.graph.node if n.op_type == "MVAU"]
    assert len(mvau) == 1
    assert DataType[df.get_tensor_datatype(mvau[0].output[0]).name].bitwidth() == 26  # 25.4e6 needs 26 bits
    got = Executor(df).run(x, keep=True)[mvau[0].output[0]]
    np.testing.assert_array_equal(np.asarray(got).astype(np.int64), want)


def test_accumulator_wider_than_32_bits_is_refused():
    with pytest.raises(ValueError, match=r"MVAU_7: an accumulator over MW=100000 products needs 3[0-9] bits"):
        kernels.accumulator_width(100_000, (0, 255), (-128, 127), where="MVAU_7")
    assert kernels.accumulator_width(784, (0, 255), (-128, 127)) == 26


def test_ternary_width_is_the_same_everywhere():
    """The passes, the RTL backend and the estimates take one width for ternary weights (-1..1)."""
    from qnnflow.flows.codegen.backends import ElemType

    assert kernels.type_range("TERNARY") == ElemType.of("TERNARY").value_range() == (-1, 1)
    # 64 products of 2-bit unsigned inputs and ternary weights: -192..192, plus one -> 9 bits
    assert kernels.accumulator_width(64, kernels.type_range("UINT2"), ElemType.of("TERNARY").value_range()) == 9


def test_exact_matmul_paths_agree():
    rng = np.random.default_rng(0)
    for hi in (2, 255, 1 << 20, 1 << 31):
        a = rng.integers(-hi, hi, size=(7, 50))
        b = rng.integers(-hi, hi, size=(50, 3))
        want = np.array([[sum(int(p) * int(q) for p, q in zip(r, col, strict=True)) for col in b.T] for r in a])
        if hi == 1 << 31:  # beyond int64 products would wrap: only check the exact paths below it
            continue
        np.testing.assert_array_equal(kernels.exact_matmul(a, b), want)


@pytest.mark.parametrize(
    "preset", ["digits-cnn-w8a8", "digits-cnn-w4a4", "digits-cnn-wta2", "digits-cnn-w4a2", "tfc-w8a3", "tfc-w3a3"]
)
def test_wide_and_mixed_presets_compile_exact_at_every_step(tmp_path, preset):
    """Random weights at 3 to 8 bits, ternary and mixed widths: every executed step after the tidy-up
    compares integers (or the logits as integers), and no step differs."""
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    shape = parse_preset(preset).input_shape
    path = export_qonnx(random_model(preset, seed=1), tmp_path / "m.onnx", shape)
    x = (np.random.default_rng(2).integers(0, 256, size=(50, *shape)) / 255).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, verbose=False)
    for s in r.checks[1:]:
        assert set(s["compared"]) & {"integers", "logits", "unchanged"}, s["step"]
        assert s["decision_mismatches"] == 0
    assert "logits" in r.checks[1]["compared"]  # streamline: the logits as exact integers
    assert r.checks[-1]["integer_exact"]
