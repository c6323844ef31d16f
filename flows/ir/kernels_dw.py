"""Golden integer reference of the depthwise (vector-vector) MVAU, ``hw/vvau.sv``.

The same conventions as :mod:`qnnflow.flows.ir.kernels` (integers, int64 results, channels-last,
bipolar given as -1 / +1, multi-threshold activation ``count(t <= acc) + out_offset``). The
input is what ``hw/sliding_window.sv`` streams: one window of K*K positions per output pixel,
flattened in (ky, kx, c) order, so element ``k*C + c`` is channel c at window position k.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir import kernels

__all__ = ["vvau", "vvau_accumulator_range"]


def vvau_accumulator_range(
    kk: int, x_range: tuple[int, int], w_range: tuple[int, int], *, xnor: bool = False
) -> tuple[int, int]:
    """Bounds of one channel's accumulator over the ``kk`` = K*K products of its window: the same
    as an MVAU row of ``kk`` columns (:func:`qnnflow.flows.ir.kernels.accumulator_range`)."""
    return kernels.accumulator_range(kk, x_range, w_range, xnor=xnor)


def vvau(
    x: np.ndarray,
    w: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    out_offset: int = 0,
    x_bipolar: bool = False,
    w_bipolar: bool = False,
) -> np.ndarray:
    """Depthwise window products: ``x`` (..., K*K*C) in (k, c) order by ``w`` (C, K*K) -> (..., C).

    ``acc[..., c] = sum_k w[c, k] * x[..., k*C + c]``, except when both ``x_bipolar`` and
    ``w_bipolar``: then the XNOR-popcount, the number of window positions where the signs of
    ``x`` and ``w`` agree (``(dot + K*K) / 2``, as :func:`qnnflow.flows.ir.kernels.mvau`). With
    ``thresholds`` (C, T), ascending per row, the output is ``count(t <= acc) + out_offset``;
    without, the accumulator itself. A depthwise convolution's weight (C, 1, KH, KW) is ``w``
    reshaped to (C, KH*KW).
    """
    xa, wa = kernels._as_int(x, "x"), kernels._as_int(w, "w")
    if wa.ndim != 2:
        raise ValueError(f"w must be a (channels, K*K) matrix, not shape {wa.shape}")
    ch, kk = wa.shape
    if xa.shape[-1:] != (kk * ch,):
        raise ValueError(f"x must end in K*K*C = {kk}*{ch} = {kk * ch} window elements, not shape {xa.shape}")
    # int64 all the way (exact at any width); the window is small, BLAS would not pay
    return kernels.mac(
        xa, wa, lambda a, b: np.einsum("...kc,ck->...c", a.reshape(*a.shape[:-1], kk, ch), b),
        thresholds=thresholds, out_offset=out_offset, x_bipolar=x_bipolar, w_bipolar=w_bipolar,
    )  # fmt: skip
