"""Boundary probes on a classifier whose boundary is known exactly: logits = x (identity MatMul),
so the boundary between classes 0 and 1 is the line x0 = x1."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.sim.probes import boundary_probes
from qonnx.core.modelwrapper import ModelWrapper


def identity_classifier(n: int) -> ModelWrapper:
    w = helper.make_tensor("W", TensorProto.FLOAT, (n, n), np.eye(n, dtype=np.float32).ravel())
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="MatMul_0")],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        initializer=[w],
    )
    return ModelWrapper(helper.make_model(graph))


def test_probes_sit_on_both_sides_of_a_known_boundary():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, size=(40, 2)).astype(np.float32)
    p = boundary_probes(identity_classifier(2), x, pairs=25, steps=16)
    a, b = np.split(p.inputs, 2)
    da, db = np.split(p.decisions, 2)
    i, j = p.pairs.T
    cls = np.argmax(x, axis=1)
    assert np.array_equal(da, cls[i]) and np.all(db != cls[i])  # the two ends straddle the boundary
    assert np.all(cls[i] != cls[j])
    # the boundary is x0 = x1: both ends within the bisection's resolution of it, plus the tie
    # tolerance of decisions() (TIE_RTOL relative) and float32 rounding
    seg = np.abs((x[j, 0] - x[j, 1]) - (x[i, 0] - x[i, 1]))
    slack = seg * 2.0**-16 + 2e-5
    assert np.all(np.abs(a[:, 0] - a[:, 1]) <= slack)
    assert np.all(np.abs(b[:, 0] - b[:, 1]) <= slack)
    s = p.summary()
    assert s["pairs_straddling"] == 25 and s["probes"] == 50
    assert s["median_margin"] < 1e-3 < s["median_test_margin"]


def test_probes_need_two_classes():
    x = np.array([[1.0, 0.0], [0.9, 0.1]], dtype=np.float32)  # both class 0
    with pytest.raises(ValueError, match="every one of the 2 inputs class 0"):
        boundary_probes(identity_classifier(2), x, pairs=4)
