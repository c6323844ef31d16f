"""The reference's boundary analysis: which inputs put a quantizer's input within the float32
noise of an export's constants of a rounding boundary (flows/ir/reference.py)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qnnflow.flows.ir.reference import CONSTANT_NOISE_RTOL, near_rounding_boundary, run_qonnx_double
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import quant, tensor


def _scaled_quant(scale: float, gain: float, mode: str = "ROUND") -> ModelWrapper:
    """x -> Mul(gain) -> Quant(8-bit signed, scale) -> y."""
    q = quant("h", "y", "s", "b", signed=1)
    next(a for a in q.attribute if a.name == "rounding_mode").s = mode.encode()
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "g"], ["h"], name="Mul_0"), q],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [tensor("g", [gain]), tensor("s", [scale]), tensor("zero", [0.0]), tensor("b", [8.0])],
    )
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_an_input_within_constant_noise_of_half_a_step_is_near_a_boundary():
    model = _scaled_quant(0.25, 1.0)
    # steps: 85.5 - 2e-6 (an exported BatchNorm's float32 noise from 85.5), 85.3, -12.5 exactly
    steps = np.array([[85.5 - 2e-6, 1.0, 2.0], [85.3, 1.0, 2.0], [-12.5, 0.0, 0.0], [10.0, 20.0, 30.0]])
    x = (steps * 0.25).astype(np.float64)
    near = near_rounding_boundary(model, x)
    assert near.tolist() == [True, False, True, False]
    # the exact values are what the reference sees: the analysis is on the float64 run
    y = run_qonnx_double(model, x)
    assert y[2, 0] == -12.0 * 0.25  # a tie rounds to even, as np.round does


def test_the_band_is_relative_and_narrow():
    model = _scaled_quant(1.0, 1.0)
    big = 100000.5 + 0.5 * CONSTANT_NOISE_RTOL * 100000.5
    far = 100000.5 + 4 * CONSTANT_NOISE_RTOL * 100000.5
    x = np.array([[big, 0, 0], [far, 0, 0], [0.5 + 1e-3, 0, 0]])
    assert near_rounding_boundary(model, x).tolist() == [True, False, False]


def test_floor_rounding_has_its_boundaries_at_whole_steps():
    model = _scaled_quant(1.0, 1.0, mode="FLOOR")
    x = np.array([[7.0 - 1e-9, 0.3, 0.3], [7.5, 0.3, 0.3], [3.0 + 1e-9, 0.4, 0.4]])
    assert near_rounding_boundary(model, x).tolist() == [True, False, True]
