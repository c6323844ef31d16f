"""Average pooling and Trunc: Brevitas' TruncAvgPool2d (Quant -> AveragePool -> Trunc v2) and a
hand-made GlobalAveragePool -> Trunc v1 graph, compiled bit-exact against QONNX execution of the
original, and the Brevitas one through the RTL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions, OutputMode
from qnnflow.flows.ir.execute import Executor
from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
from qnnflow.flows.passes.pool import LowerAveragePool
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import assert_latency_estimated

Q = "qonnx.custom_op.general"


def _t(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.ravel())


@pytest.fixture(scope="module")
def brevitas_avgpool(tmp_path_factory):
    """conv(1->4, 3x3, w2) -> relu(a2) -> TruncAvgPool2d(2) -> fc(36->10, w2), seeded weights."""
    torch = pytest.importorskip("torch")
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx

    torch.manual_seed(3)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            self.conv = qnn.QuantConv2d(1, 4, 3, weight_bit_width=2, return_quant_tensor=True)
            self.act = qnn.QuantReLU(bit_width=2, return_quant_tensor=True)
            self.pool = qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=4, return_quant_tensor=True)
            self.fc = qnn.QuantLinear(36, 10, weight_bit_width=2, bias=False)

        def forward(self, x):
            return self.fc(self.pool(self.act(self.conv(self.inp(x)))).flatten(1))

    path = tmp_path_factory.mktemp("avgpool") / "avgpool.onnx"
    export_qonnx(Net().eval(), torch.rand(1, 1, 8, 8), export_path=str(path))
    x = (np.random.default_rng(0).integers(0, 16, size=(60, 1, 8, 8)) / 15).astype(np.float32)
    return path, x


def test_brevitas_trunc_avgpool_exports_what_we_lower(brevitas_avgpool):
    path, _ = brevitas_avgpool
    ops = [n.op_type for n in load_qonnx(path).graph.node]
    assert "AveragePool" in ops and "Trunc" in ops


@pytest.mark.rtl
def test_trunc_avgpool_compiles_and_simulates_bit_exact(brevitas_avgpool, tmp_path):
    from qnnflow.sim.stitch import simulate

    path, x = brevitas_avgpool
    res = compile_model(path, tmp_path, inputs=x, opts=CompileOptions(target_cycles=400), verbose=False)
    ver = json.loads((tmp_path / "verification.json").read_text())
    assert all(s["decision_mismatches"] == 0 for s in ver["steps"]) and ver["steps"][-1]["integer_exact"]
    ops = [lay["op_type"] for lay in res.estimates["layers"]]
    assert ops.count("MVAU") == 3  # conv, the pool's window sum (with the Trunc as its thresholds), fc
    assert "Thresholding" not in ops
    sim = simulate(tmp_path, inputs=x, log=lambda _m: None)
    assert sim["mismatches"] == 0
    assert_latency_estimated(sim)
    sw = decisions(run_qonnx(load_qonnx(path), x))
    hw = decisions(np.load(Path(sim["results_dir"]) / "outputs.npy"))
    assert np.array_equal(hw, sw)
    stalled = simulate(tmp_path, inputs=x, stalls=True, seed=3, log=lambda _m: None)  # under backpressure too
    assert stalled["mismatches"] == 0 and stalled["stalls"]
    assert np.array_equal(decisions(np.load(Path(stalled["results_dir"]) / "outputs.npy")), sw)


def _gap_trunc_v1() -> ModelWrapper:
    """x (1,2,4,4) -> Quant(unsigned 3 bits, scale 0.5) -> GlobalAveragePool -> Trunc v1 (scale
    0.5, in 5 bits, out 4 bits: halve, floor) -> Flatten -> MatMul(integer W) -> y."""
    w = np.array([[1, -1, 0], [-1, 1, 1]], dtype=np.float32)
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b3"], ["q"], domain=Q, signed=0, narrow=0, rounding_mode="ROUND"),
        helper.make_node("GlobalAveragePool", ["q"], ["m"], name="Gap"),
        helper.make_node("Trunc", ["m", "s", "z", "b5", "b4"], ["t"], domain=Q, name="Trunc", rounding_mode="FLOOR"),
        helper.make_node("Flatten", ["t"], ["f"], name="Flatten"),
        helper.make_node("MatMul", ["f", "W"], ["y"], name="MatMul"),
    ]
    inits = [_t("s", 0.5), _t("z", 0.0), _t("b3", 3.0), _t("b5", 5.0), _t("b4", 4.0), _t("W", w)]
    graph = helper.make_graph(
        nodes,
        "gap_trunc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]
    return ModelWrapper(helper.make_model(graph, opset_imports=opsets))


def test_global_average_pool_with_trunc_v1_is_integer_exact(tmp_path):
    model = _gap_trunc_v1()
    rng = np.random.default_rng(1)
    x = (rng.uniform(0, 4, size=(200, 2, 4, 4)) * rng.uniform(0, 2, size=(200, 2, 1, 1))).astype(np.float32)
    compile_model(model, tmp_path, inputs=x, opts=CompileOptions(output=OutputMode.LOGITS), verbose=False)
    ref = run_qonnx(_gap_trunc_v1(), x)
    assert len(np.unique(ref.round(6), axis=0)) > 5  # the Trunc's levels vary: not a constant output
    got = Executor(ModelWrapper(str(tmp_path / "dataflow.onnx"))).run(x).reshape(ref.shape)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"pads": [1, 1, 1, 1], "count_include_pad": 0}, "count_include_pad=0"),
        ({"ceil_mode": 1}, "ceil_mode=1"),
        ({"auto_pad": "SAME_UPPER"}, "auto_pad SAME_UPPER"),
    ],
)
def test_average_pools_it_cannot_lower_are_named(attrs, message):
    node = helper.make_node("AveragePool", ["x"], ["y"], name="Pool_7", kernel_shape=[2, 2], **attrs)
    graph = helper.make_graph(
        [node],
        "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    with pytest.raises(ValueError, match=message) as err:
        LowerAveragePool().apply(ModelWrapper(helper.make_model(graph)))
    assert "Pool_7" in str(err.value)
