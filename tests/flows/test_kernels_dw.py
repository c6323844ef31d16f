"""qnnflow.flows.ir.kernels_dw (the depthwise VVAU reference) and the VVAU word layout of
qnnflow.flows.codegen.memfiles, against explicit loops."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.codegen import memfiles
from qnnflow.flows.ir import kernels, kernels_dw


def _depthwise_conv_loops(x: np.ndarray, w: np.ndarray, stride: int, pad: tuple[int, int]) -> np.ndarray:
    """NHWC image x, weights (C, KH, KW), zero padding (rows, columns): each channel convolved with
    its own kernel, by loops."""
    n, h, wd, c = x.shape
    _, kh, kw = w.shape
    ph, pw = pad
    xp = np.zeros((n, h + 2 * ph, wd + 2 * pw, c), dtype=np.int64)
    xp[:, ph : ph + h, pw : pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // stride + 1, (wd + 2 * pw - kw) // stride + 1
    out = np.zeros((n, oh, ow, c), dtype=np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    for ky in range(kh):
                        for kx in range(kw):
                            out[b, oy, ox, ch] += w[ch, ky, kx] * xp[b, oy * stride + ky, ox * stride + kx, ch]
    return out


@pytest.mark.parametrize("h, kh, kw, stride, pad", [(5, 3, 3, 1, (1, 1)), (6, 2, 2, 2, (0, 0)), (1, 1, 5, 2, (0, 2))])
def test_vvau_on_the_window_stream_is_a_depthwise_convolution(h, kh, kw, stride, pad):
    """sliding_window then vvau equals a depthwise convolution, also a Conv1d (1 row, 1 x K kernel)."""
    rng = np.random.default_rng(kh * 10 + kw)
    x = rng.integers(-8, 8, size=(2, h, 7, 3))
    w = rng.integers(-4, 4, size=(3, kh, kw))
    win = kernels.sliding_window(x, (kh, kw), stride, pad)
    got = kernels_dw.vvau(win, w.reshape(3, kh * kw))
    np.testing.assert_array_equal(got, _depthwise_conv_loops(x, w, stride, pad))


def test_vvau_xnor_counts_agreeing_signs_and_thresholds():
    rng = np.random.default_rng(3)
    x = rng.choice([-1, 1], size=(6, 9 * 4))
    w = rng.choice([-1, 1], size=(4, 9))
    got = kernels_dw.vvau(x, w, x_bipolar=True, w_bipolar=True)
    want = np.array([[sum(x[n, k * 4 + c] == w[c, k] for k in range(9)) for c in range(4)] for n in range(6)])
    np.testing.assert_array_equal(got, want)
    thr = np.array([[3, 5], [0, 9], [10, 10], [4, 4]])
    act = kernels_dw.vvau(x, w, thresholds=thr, out_offset=-1, x_bipolar=True, w_bipolar=True)
    np.testing.assert_array_equal(act, (want[..., None] >= thr).sum(-1) - 1)


def test_vvau_rejects_mismatched_shapes_and_fake_bipolar():
    with pytest.raises(ValueError, match=r"x must end in K\*K\*C = 9\*2 = 18 window elements, not shape \(3, 9\)"):
        kernels_dw.vvau(np.zeros((3, 9)), np.zeros((2, 9)))
    with pytest.raises(ValueError, match="w is declared bipolar"):
        kernels_dw.vvau(np.ones((1, 4)), np.zeros((1, 4)), w_bipolar=True)
    with pytest.raises(TypeError, match="x must hold integers"):
        kernels_dw.vvau(np.full((1, 4), 0.5), np.zeros((1, 4)))


@pytest.mark.parametrize("ch, kk, pe, simd", [(4, 9, 1, 1), (4, 9, 2, 1), (3, 9, 3, 3), (2, 4, 2, 4)])
def test_vvau_weight_words_layout(ch, kk, pe, simd):
    width = 3
    w = np.random.default_rng(ch + kk).integers(-4, 4, size=(ch, kk))
    words = memfiles.vvau_weight_words(w, pe, simd, width, signed=True)
    nf, sf = ch // pe, kk // simd
    assert len(words) == nf * sf
    for sf_i in range(sf):
        for nf_i in range(nf):
            word = words[sf_i * nf + nf_i]  # the order of the (ky, kx, c) window stream
            for p in range(pe):
                for s in range(simd):
                    code = (word >> ((p * simd + s) * width)) & 0b111
                    assert code == (int(w[nf_i * pe + p, sf_i * simd + s]) & 0b111)
    np.testing.assert_array_equal(memfiles.vvau_weights_from_words(words, ch, kk, pe, simd, width, signed=True), w)


def test_vvau_weight_words_fold_errors():
    with pytest.raises(ValueError, match=r"PE must divide the channel count \(6\), not 4"):
        memfiles.vvau_weight_words(np.zeros((6, 9)), 4, 1, 2, signed=True)
    with pytest.raises(ValueError, match=r"SIMD must divide K\*K \(9\), not 2"):
        memfiles.vvau_weight_words(np.zeros((6, 9)), 6, 2, 2, signed=True)
