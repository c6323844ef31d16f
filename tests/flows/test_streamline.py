"""Streamlining: integer MatMul + exact thresholds, checked against QONNX execution of the original."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.ir.execute import Executor, reference_outputs
from qnnflow.flows.passes.streamline import Streamline
from qnnflow.flows.passes.tail import find_thresholds
from qnnflow.flows.passes.tidy import tidy

from tests.flows.helpers import mlp_with_tail


def _all_inputs(mw: int, bits: int) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(2**bits)] * mw, indexing="ij")
    return np.stack([g.ravel() for g in grids], 1).astype(np.float32)


def _streamlined_vs_reference(model, x):
    ref = reference_outputs(model, x, batch=len(x))
    s, changed = Streamline().apply(tidy(model))
    assert changed
    ops = [n.op_type for n in s.graph.node]
    while ops[-1] in ("Mul", "Add"):  # the output scale stays on the host
        ops.pop()
    assert set(ops) <= {"MatMul", "MultiThreshold"}, ops  # no float op left between integer layers
    got = np.asarray(Executor(s).run(x))
    return ref, got, s


@pytest.mark.parametrize(
    "tail, bits, signed",
    [
        ([("Mul", 0.5)], 3, True),  # every odd accumulator is a rounding tie (round half to even)
        ([("Mul", -0.5), ("Add", 0.25)], 3, True),  # decreasing function, signed output
        ([("Mul", np.array([0.5, -0.25, 1.5])), ("Add", np.array([0.5, -1.5, 0.0]))], 2, False),
    ],
    ids=["ties", "decreasing-signed", "per-channel-mixed-sign"],
)
def test_thresholds_exact_on_every_input(tail, bits, signed):
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, size=(3, 3)).astype(np.float32)
    model = mlp_with_tail(w, tail, bits, signed, in_bits=3)
    x = _all_inputs(3, 3)  # all 512 inputs: every accumulator value the weights can produce
    ref, got, _ = _streamlined_vs_reference(model, x)
    np.testing.assert_array_equal(got, ref)


def test_negative_batchnorm_scale_negates_weight_rows():
    w = np.array([[1, -2], [3, 1], [-1, 2]], dtype=np.float32)
    bn = (np.array([-1.3, 0.7]), np.array([0.2, -0.4]), np.array([1.0, -2.0]), np.array([2.0, 0.5]))
    model = mlp_with_tail(w, [("BatchNormalization", bn)], 2, False, out_scale=0.5, in_bits=3)
    x = _all_inputs(3, 3)
    ref, got, s = _streamlined_vs_reference(model, x)
    np.testing.assert_array_equal(got, ref)
    new_w = s.get_initializer(s.graph.node[0].input[1])
    np.testing.assert_array_equal(new_w[:, 0], -w[:, 0])  # decreasing channel: row negated
    np.testing.assert_array_equal(new_w[:, 1], w[:, 1])


def test_find_thresholds_matches_brute_force():
    rng = np.random.default_rng(3)
    lo, hi = np.array([-40, -5, 0]), np.array([40, 60, 7])
    cuts = np.sort(rng.integers(-45, 65, size=(3, 3)), axis=1)

    def f(probe):
        return (probe[:, :, None] >= cuts[None, :, :]).sum(-1)

    thr = find_thresholds(f, lo, hi, 0, 3, "test")
    for c in range(3):
        for acc in range(lo[c], hi[c] + 1):
            assert (thr[c] <= acc).sum() == f(np.full((1, 3), acc))[0, c]


def test_tfc_w1a2_finn_onnx_streamlines_bit_exact(third_party_dir, mnist_dir):
    from qnnflow.flows.compile.importer import load_model
    from qnnflow.models.datasets import load_idx_test

    images, _ = load_idx_test(mnist_dir)
    x = images[:300].reshape(-1, 1, 28, 28).astype(np.float32)
    model = load_model(third_party_dir / "tfc_w1a2_finn_onnx.onnx")
    ref = reference_outputs(model, x, batch=300)
    s, _ = Streamline().apply(tidy(model))
    np.testing.assert_array_equal(np.asarray(Executor(s).run(x)).ravel(), ref.ravel())
