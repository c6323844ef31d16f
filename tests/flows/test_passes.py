"""Tidy and integer clean-up passes, and the importer's error for unsupported ops."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.importer import load_model
from qnnflow.flows.ir.execute import Executor
from qnnflow.flows.passes.integer import FuseThresholds, RemoveShapeRoundTrips
from qnnflow.flows.passes.tidy import RemoveNoOps, fixed_point
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

Q = "qonnx.custom_op.general"


def _model(nodes, inits, out_shape, in_dt="INT6"):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_shape)],
    )
    m = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    for k, v in inits.items():
        m.set_initializer(k, np.asarray(v, dtype=np.float32 if k != "shp" else np.int64))
    m.set_tensor_datatype("x", DataType[in_dt])
    from qonnx.transformation.infer_shapes import InferShapes

    return m.transform(InferShapes())


def test_fuse_thresholds_equals_the_pair_on_every_input():
    rng = np.random.default_rng(0)
    t1 = np.sort(rng.integers(-32, 32, size=(4, 7)), axis=1)
    t2 = np.array([[1.5, 3.0, 6.0]])  # applied to 2*count - 3
    nodes = [
        helper.make_node(
            "MultiThreshold",
            ["x", "t1"],
            ["a"],
            domain=Q,
            out_dtype="UINT3",
            out_scale=2.0,
            out_bias=-3.0,
            name="MT1",
        ),
        helper.make_node("MultiThreshold", ["a", "t2"], ["b"], domain=Q, out_dtype="INT2", out_bias=-2.0, name="MT2"),
    ]
    m = _model(nodes, {"t1": t1, "t2": t2}, [1, 4])
    x = np.repeat(np.arange(-32, 32, dtype=np.float32)[:, None], 4, axis=1)
    before = np.asarray(Executor(m).run(x))
    m2, changed = FuseThresholds().apply(m)
    assert changed and [n.op_type for n in m2.graph.node] == ["MultiThreshold"]
    np.testing.assert_array_equal(np.asarray(Executor(m2).run(x)), before)


def test_shape_round_trip_removed_and_noops_removed():
    nodes = [
        helper.make_node("Mul", ["x", "one"], ["m"], name="Mul_0"),
        helper.make_node("Unsqueeze", ["m", "ax"], ["u"], name="U"),
        helper.make_node("Squeeze", ["u", "ax"], ["s"], name="S"),
        helper.make_node("Relu", ["s"], ["y"], name="R"),
    ]
    m = _model(nodes, {"one": 1.0}, [1, 4])
    m.set_initializer("ax", np.array([2], dtype=np.int64))
    from qonnx.transformation.infer_shapes import InferShapes

    m = m.transform(InferShapes())
    m = fixed_point(m, [RemoveNoOps(), RemoveShapeRoundTrips()])
    assert [n.op_type for n in m.graph.node] == ["Relu"]


def test_unsupported_ops_listed_in_one_error(tmp_path):
    nodes = [
        helper.make_node("Sin", ["x"], ["a"], name="Sin_0"),
        helper.make_node("Relu", ["a"], ["b"], name="Relu_0"),
        helper.make_node("Cos", ["b"], ["y"], name="Cos_0"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "bad.onnx"
    import onnx

    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(ValueError) as err:
        load_model(path)
    msg = str(err.value)
    assert msg.startswith("2 node(s) the compiler cannot lower: Sin_0 (Sin); Cos_0 (Cos). Supported op types: ")
    assert "MatMul" in msg and "MultiThreshold" in msg


def test_missing_model_file():
    with pytest.raises(FileNotFoundError, match="model file not found: nowhere.onnx"):
        load_model("nowhere.onnx")
