"""qnnflow.flows.ir.kernels against independent element-by-element loops."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.ir import kernels


def _loop_mvau(x, w, thr=None, offset=0, xnor=False):
    out = []
    for vec in x:
        row_out = []
        for r in range(w.shape[0]):
            if xnor:
                acc = sum(1 for c in range(w.shape[1]) if vec[c] == w[r, c])
            else:
                acc = sum(int(vec[c]) * int(w[r, c]) for c in range(w.shape[1]))
            if thr is not None:
                acc = sum(1 for t in thr[r] if t <= acc) + offset
            row_out.append(acc)
        out.append(row_out)
    return np.array(out)


@pytest.mark.parametrize(
    "xr, wr, xnor",
    [((0, 3), (-2, 1), False), ((-8, 7), (0, 15), False), ((-1, 1), (-1, 1), True), ((0, 3), (-1, 1), False)],
    ids=["a2u-w2s", "a4s-w4u", "bipolar-xnor", "ternary"],
)
def test_mvau_matches_loop(xr, wr, xnor):
    rng = np.random.default_rng(1)
    if xnor:
        x = rng.choice([-1, 1], size=(5, 12))
        w = rng.choice([-1, 1], size=(6, 12))
    else:
        x = rng.integers(xr[0], xr[1] + 1, size=(5, 12))
        w = rng.integers(wr[0], wr[1] + 1, size=(6, 12))
    np.testing.assert_array_equal(kernels.mvau(x, w, x_bipolar=xnor, w_bipolar=xnor), _loop_mvau(x, w, xnor=xnor))
    thr = np.sort(rng.integers(-20, 20, size=(6, 3)), axis=1)
    got = kernels.mvau(x, w, thresholds=thr, out_offset=-1, x_bipolar=xnor, w_bipolar=xnor)
    np.testing.assert_array_equal(got, _loop_mvau(x, w, thr, -1, xnor))


def test_xnor_popcount_is_dot_plus_mw_over_two():
    x = np.array([[1, -1, 1, 1]])
    w = np.array([[1, 1, -1, 1], [-1, 1, -1, -1]])
    np.testing.assert_array_equal(kernels.mvau(x, w, x_bipolar=True, w_bipolar=True), [[2, 0]])


def test_bipolar_flag_checks_values():
    with pytest.raises(ValueError, match="bipolar"):
        kernels.mvau(np.array([[0, 1]]), np.array([[1, 1]]), x_bipolar=True)


def test_thresholding_counts_and_offset():
    x = np.array([[0, 5, 9], [3, -2, 10]])
    thr = np.array([[1, 4, 8], [5, 5, 6], [-3, 0, 10]])
    want = [[0 - 1, 2 - 1, 2 - 1], [1 - 1, 0 - 1, 3 - 1]]
    np.testing.assert_array_equal(kernels.thresholding(x, thr, -1), want)


def test_thresholds_must_be_sorted():
    with pytest.raises(ValueError, match="ascending"):
        kernels.thresholding(np.array([[1]]), np.array([[3, 1]]))


def test_clip_thresholds_keeps_activation():
    rng = np.random.default_rng(2)
    thr = np.sort(rng.integers(-100, 100, size=(4, 5)), axis=1)
    x = rng.integers(-8, 8, size=(50, 4))
    clipped = kernels.clip_thresholds(thr, -8, 7)
    assert clipped.min() >= -8 and clipped.max() <= 8
    np.testing.assert_array_equal(kernels.thresholding(x, thr), kernels.thresholding(x, clipped))


def test_accumulator_width():
    # 16 products of u2 x s2: [-2*3*16, 1*3*16] = [-96, 48]; +1 for a never-firing threshold
    assert kernels.accumulator_range(16, (0, 3), (-2, 1)) == (-96, 48)
    assert kernels.accumulator_width(16, (0, 3), (-2, 1)) == 8
    assert kernels.accumulator_width(64, (-1, 1), (-1, 1), xnor=True) == 8  # 0..65
    assert kernels.signed_width(-128, 127) == 8 and kernels.signed_width(0, 128) == 9


def _loop_im2col(x, k, s, p, pv):
    n, h, w, c = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, oh, ow, k * k * c), dtype=np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                i = 0
                for ky in range(k):
                    for kx in range(k):
                        for ch in range(c):
                            y, xx = oy * s - p + ky, ox * s - p + kx
                            inside = 0 <= y < h and 0 <= xx < w
                            out[b, oy, ox, i] = x[b, y, xx, ch] if inside else pv
                            i += 1
    return out


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 1, 0), (2, 2, 0), (3, 2, 1), (1, 1, 0)])
def test_sliding_window_matches_loop(k, s, p):
    x = np.random.default_rng(3).integers(-4, 4, size=(2, 7, 6, 3))
    np.testing.assert_array_equal(kernels.sliding_window(x, k, s, p, pad_value=-9), _loop_im2col(x, k, s, p, -9))


def test_maxpool_and_floor():
    x = np.random.default_rng(4).integers(-50, 50, size=(2, 7, 5, 3))
    got = kernels.maxpool(x, 2)
    assert got.shape == (2, 3, 2, 3)
    for oy in range(3):
        for ox in range(2):
            np.testing.assert_array_equal(
                got[:, oy, ox], x[:, 2 * oy : 2 * oy + 2, 2 * ox : 2 * ox + 2].max(axis=(1, 2))
            )


def test_label_select_ties_go_to_lowest_index():
    x = np.array([[3, 7, 7, 1], [5, 5, 5, 5], [-1, -3, 0, 0]])
    np.testing.assert_array_equal(kernels.label_select(x)[:, 0], np.argmax(x, axis=-1))
    np.testing.assert_array_equal(kernels.label_select(x, 3), [[1, 2, 0], [0, 1, 2], [2, 3, 0]])


def test_add_and_duplicate():
    a, b = np.arange(6).reshape(2, 3), -np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(kernels.add_streams(a, b), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="equal shapes"):
        kernels.add_streams(a, b[:, :2])
    c1, c2 = kernels.duplicate_streams(a)
    np.testing.assert_array_equal(c1, a) and np.testing.assert_array_equal(c2, a)
