"""The TV smoothing step (flows/ir/kernels_tv.py) against a direct float evaluation written here with
explicit difference matrices, its table's symmetries, its 3x3-window form, and its QONNX custom op."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qnnflow.flows.codegen import memfiles
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.kernels_tv import TVParams, tv_step, tv_table, tv_window_step


def _forward_difference(n: int) -> np.ndarray:
    """(n, n) forward differences with a Neumann last row: (D v)[i] = v[i+1] - v[i], (D v)[n-1] = 0."""
    d = np.zeros((n, n))
    for i in range(n - 1):
        d[i, i], d[i, i + 1] = -1.0, 1.0
    return d


def _float_tv(x: np.ndarray, gamma2: float, eps: float) -> np.ndarray:
    """x - gamma^2 (D_x^T (D_x x / r) + D_y^T (D_y x / r)) on one (H, W) map, as matrix products."""
    h, w = x.shape
    dh, dw = _forward_difference(h), _forward_difference(w)
    a = x @ dw.T  # D_x x: along a row
    b = dh @ x  # D_y x: along a column
    r = np.sqrt(a * a + b * b + eps)
    return x - gamma2 * ((a / r) @ dw + dh.T @ (b / r))


@pytest.mark.parametrize(
    "shape, bits, gamma",
    [((5, 7), 2, 0.5), ((6, 6), 4, 1.0), ((1, 9), 3, 0.75), ((8, 1), 2, 1.3), ((4, 5), 3, 0.3), ((1, 1), 2, 1.0)],
)
def test_integer_step_within_its_rounding_bound_of_the_float_step(shape, bits, gamma):
    p = TVParams.from_gamma(gamma)
    lo, hi = 0, 2**bits - 1
    rng = np.random.default_rng(bits * 100 + shape[0])
    x = rng.integers(lo, hi + 1, size=(3, *shape, 4))  # (N, H, W, C)
    got = tv_step(x, lo, hi, p)
    # the table entries are off by at most 1/2 of 2^-F each (four of them in div), gamma^2 by its
    # rounding to G fraction bits (|div| <= 4), the update by its final rounding (1/2); the clamp
    # moves both results by no more than it narrows their distance
    bound = 0.5 + p.gamma2 * 4 * 0.5 * 2.0**-p.frac_bits + abs(p.gamma2 - gamma * gamma) * 4
    worst = 0.0
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            want = np.clip(_float_tv(x[n, :, :, c].astype(float), gamma * gamma, p.eps), lo, hi)
            worst = max(worst, float(np.abs(got[n, :, :, c] - want).max()))
    assert worst <= bound + 1e-9
    assert got.dtype == np.int64 and got.min() >= lo and got.max() <= hi


def test_the_step_smooths_a_spike_and_keeps_a_flat_map():
    p = TVParams.from_gamma(0.5)
    flat = np.full((1, 5, 5, 1), 2)
    assert np.array_equal(tv_step(flat, 0, 3, p), flat)
    spike = flat.copy()
    spike[0, 2, 2, 0] = 3
    out = tv_step(spike, 0, 3, p)
    assert out[0, 2, 2, 0] == 2  # the spike comes down one level (gamma^2 * |div| ~ 1)
    assert np.array_equal(np.delete(out.ravel(), 12), np.delete(spike.ravel(), 12))


@pytest.mark.parametrize("span, frac_bits", [(1, 6), (3, 6), (15, 6), (7, 9)])
def test_table_symmetries_and_values(span, frac_bits):
    p = TVParams(4, frac_bits=frac_bits)
    t = tv_table(span, p)
    r = np.arange(-span, span + 1)
    assert np.array_equal(t[::-1, :], -t)  # odd in a
    assert np.array_equal(t[:, ::-1], t)  # even in b
    assert np.all(t[span, :] == 0) and np.abs(t).max() <= 2**frac_bits
    for i, a in enumerate(r):
        for j, b in enumerate(r):
            v = a * 2**frac_bits / math.sqrt(a * a + b * b + p.eps)
            assert t[i, j] == math.copysign(math.floor(abs(v) + 0.5), v) or (t[i, j] == 0 and a == 0)
    # the RTL's table holds the magnitudes, word |a|*(span+1) + |b|
    words, width = memfiles.tv_table_words(span, p)
    assert width == frac_bits + 1 and len(words) == (span + 1) ** 2
    for a in range(-span, span + 1):
        for b in range(-span, span + 1):
            assert t[a + span, b + span] == np.sign(a) * words[abs(a) * (span + 1) + abs(b)]


@pytest.mark.parametrize("h, w", [(4, 6), (1, 5), (5, 1)])
def test_window_form_equals_the_map_form(h, w):
    """What hw/tv_smooth.sv computes from the 3x3 window stream (padding of any value) is tv_step."""
    p = TVParams.from_gamma(0.8)
    rng = np.random.default_rng(h * 10 + w)
    x = rng.integers(0, 8, size=(1, h, w, 3))
    win = kernels.sliding_window(x, 3, 1, 1, pad_value=7).reshape(h, w, 3, 3, 3)
    want = tv_step(x, 0, 7, p)
    for i in range(h):
        for j in range(w):
            assert np.array_equal(tv_window_step(win[i, j], i, j, h, w, 0, 7, p), want[0, i, j])


def test_codes_outside_the_levels_are_refused():
    with pytest.raises(ValueError, match=r"codes must be integers in \[0, 3\]"):
        tv_step(np.full((1, 2, 2, 1), 4), 0, 3, TVParams(4))
    with pytest.raises(ValueError, match=r"gamma must be >= 0"):
        TVParams.from_gamma(-1.0)


def _tv_model(scale: float, shape=(2, 3, 5, 6)):
    from onnx import TensorProto, helper
    from qnnflow.flows.ir.custom_ops import make_tv_node
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    node = make_tv_node("tv", "x", "y", scale=scale, lo=0, hi=3, p=TVParams.from_gamma(0.5))
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n in ("x", "y")]
    return ModelWrapper(qonnx_make_model(helper.make_graph([node], "g", vi[:1], vi[1:])))


def test_custom_op_runs_in_qonnx_execution():
    from qonnx.core.onnx_exec import execute_onnx

    scale = np.float32(0.3)
    codes = np.random.default_rng(3).integers(0, 4, size=(2, 3, 5, 6))
    y = execute_onnx(_tv_model(float(scale)), {"x": (scale * codes).astype(np.float32)})["y"]
    want = np.moveaxis(tv_step(np.moveaxis(codes, 1, -1), 0, 3, TVParams.from_gamma(0.5)), -1, 1)
    assert y.dtype == np.float32 and np.array_equal(y, (scale * want).astype(np.float32))
    with pytest.raises(ValueError, match=r"scale \(0.3\) times integer codes in 0..3; found the code 0.5"):
        execute_onnx(_tv_model(float(scale)), {"x": np.full((2, 3, 5, 6), 0.15, dtype=np.float32)})
