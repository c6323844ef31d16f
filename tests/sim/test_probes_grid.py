"""Boundary probes and user inputs for a model whose input takes only grid values (a UINT8
annotation, as FINN-ONNX and QKeras-derived graphs carry): probes are bisected on the grid, so
QONNX accepts every one; off-grid inputs and inputs without a boundary get clear answers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.ir.inputs import check_on_grid, input_grid
from qnnflow.flows.ir.reference import decisions, run_qonnx
from qnnflow.sim.probes import NoBoundaryError, boundary_probes
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def _uint8_linear(seed: int = 0) -> ModelWrapper:
    """x (UINT8, 6 values) -> MatMul with a float matrix -> 3 logits."""
    w = np.random.default_rng(seed).normal(size=(6, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="MatMul_0")],
        "uint8_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())],
    )
    model = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    onnx.checker.check_model(model.model)
    model.set_tensor_datatype("x", DataType["UINT8"])
    return model


def test_probes_of_a_uint8_model_are_integers_on_either_side_of_its_boundary():
    model = _uint8_linear()
    grid = input_grid(model)
    assert grid is not None and grid.exact and (grid.lo, grid.hi) == (0, 255)
    x = np.random.default_rng(1).integers(0, 256, size=(40, 6)).astype(np.float32)
    probes = boundary_probes(model, x, pairs=12)
    assert np.array_equal(probes.inputs, np.round(probes.inputs))
    assert probes.inputs.min() >= 0 and probes.inputs.max() <= 255
    a, b = np.split(decisions(run_qonnx(model, probes.inputs)), 2)  # QONNX takes every probe as it is
    assert np.all(a != b)
    np.testing.assert_array_equal(np.concatenate([a, b]), probes.decisions)


def test_inputs_without_a_boundary_are_a_clear_case():
    model = _uint8_linear()
    x = np.random.default_rng(1).integers(0, 256, size=(5, 6)).astype(np.float32)
    with pytest.raises(NoBoundaryError, match="1 input: two inputs of different classes"):
        boundary_probes(model, x[:1], pairs=3)
    dec = decisions(run_qonnx(model, x))
    same = x[dec == dec[0]]
    with pytest.raises(NoBoundaryError, match=f"every one of the {len(same)} inputs class {dec[0]}"):
        boundary_probes(model, same, pairs=3)


def test_an_off_grid_input_is_named_by_index_and_value():
    model = _uint8_linear()
    x = np.zeros((3, 6), np.float32)
    check_on_grid(x, model, "x.npy")  # on the grid: no complaint
    x[2, 4] = 17.5
    with pytest.raises(ValueError, match=r"x.npy: value 17.5 at index \(2, 4\) is not on the model's input grid "
                       r"\(integers 0..255, its UINT8 annotation\); 1 of 18 values are off it"):
        check_on_grid(x, model, "x.npy")
