"""Golden integer model of one total-variation (TV) smoothing step on a quantized feature map.

The operator (the edge-aware TV gradient step of Ben-Yair et al., "Quantized Convolutional Neural
Networks Through the Lens of Partial Differential Equations", section on TV smoothing; their code
has none, so this module is the definition the project uses everywhere: training's forward pass,
the exported custom op, the compiler's layer and the RTL bench all call :func:`tv_step`):

    x <- x - gamma^2 * sum_{d in {x, y}} D_d^T ( D_d x / sqrt((D_x x)^2 + (D_y x)^2 + eps) )

per channel on an (H, W) map, ``D_x`` / ``D_y`` forward differences with Neumann boundaries (the
difference leaving the map is 0: ``(D_x x)[i, W-1] = 0``, ``(D_y x)[H-1, j] = 0``), ``D^T`` their
transposes (``(D_x^T n)[i, j] = n[i, j-1] [j > 0] - n[i, j]``).

Its exact quantized form acts on the integer codes ``c`` of the activation (levels ``lo .. hi``;
for the float form multiply by the activation scale, the step is scale-free in code units):

- the differences ``a = D_x c``, ``b = D_y c`` are integers in ``[-(hi-lo), hi-lo]``;
- the normalized difference is a table, ``T[a, b] = round(a * 2^F / sqrt(a^2 + b^2 + eps))``
  (round half away from zero, ``F`` = ``frac_bits``), odd in ``a`` and even in ``b``;
  ``n_x = T[a, b]``, ``n_y = T[b, a]``;
- ``div = D_x^T n_x + D_y^T n_y`` (an integer, scale 2^-F), ``u = g * div`` with
  ``g = round(gamma^2 * 2^G)`` (``G`` = ``gamma_frac_bits``);
- ``out = clamp(c - ((u + 2^(F+G-1)) >> (F+G)), lo, hi)``: the update rounded half up (an
  arithmetic shift of ``u + half``), the result clamped to the activation's levels.

An output pixel needs the codes of its 3x3 neighbourhood (all of it but the two corners
(i-1, j-1) and (i+1, j+1)), so in hardware it is fed by a 3x3 sliding window with padding 1;
the boundary masks depend on the pixel's position only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TVParams", "tv_table", "tv_step", "tv_window_step"]


@dataclass(frozen=True)
class TVParams:
    """The constants of one TV step in code units. ``gamma_q`` = round(gamma^2 * 2^gamma_frac_bits)."""

    gamma_q: int
    eps: float = 0.25
    frac_bits: int = 6
    gamma_frac_bits: int = 4

    @classmethod
    def from_gamma(cls, gamma: float, eps: float = 0.25, frac_bits: int = 6, gamma_frac_bits: int = 4) -> TVParams:
        """``gamma`` (the paper's step size; gamma^2 multiplies the TV gradient) rounded to the grid."""
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, not {gamma}")
        return cls(round(gamma * gamma * 2**gamma_frac_bits), eps, frac_bits, gamma_frac_bits)

    def __post_init__(self):
        if self.gamma_q < 0:
            raise ValueError(f"gamma_q must be >= 0, not {self.gamma_q}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0 (it keeps sqrt(a^2 + b^2 + eps) away from 0), not {self.eps}")
        if not (1 <= self.frac_bits <= 16 and 0 <= self.gamma_frac_bits <= 16):
            raise ValueError(
                f"frac_bits must be in 1..16 and gamma_frac_bits in 0..16, not {self.frac_bits}, {self.gamma_frac_bits}"
            )

    @property
    def gamma2(self) -> float:
        """The gamma^2 the integer ``gamma_q`` stands for."""
        return self.gamma_q / 2**self.gamma_frac_bits


def _round_half_away(v: float) -> int:
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def tv_table(span: int, p: TVParams) -> np.ndarray:
    """``T[a + span, b + span]`` for ``a, b`` in ``[-span, span]`` (``span`` = hi - lo): int64."""
    if span < 0:
        raise ValueError(f"span must be >= 0, not {span}")
    r = np.arange(-span, span + 1)
    t = np.empty((r.size, r.size), dtype=np.int64)
    for i, a in enumerate(r):
        for j, b in enumerate(r):
            t[i, j] = _round_half_away(float(a) * 2**p.frac_bits / math.sqrt(float(a * a + b * b) + p.eps))
    return t


def tv_step(c: np.ndarray, lo: int, hi: int, p: TVParams) -> np.ndarray:
    """One exact TV step on integer codes ``c`` of shape (..., H, W, C) (channels last) -> same shape."""
    c = np.asarray(c)
    if c.ndim < 3:
        raise ValueError(f"codes must be (..., H, W, C), not shape {c.shape}")
    ci = c.astype(np.int64)
    if not np.array_equal(ci, c) or ci.size and (ci.min() < lo or ci.max() > hi):
        raise ValueError(f"codes must be integers in [{lo}, {hi}]")
    span = hi - lo
    table = tv_table(span, p)
    # forward differences, 0 where they would leave the map (Neumann)
    a = np.zeros_like(ci)
    b = np.zeros_like(ci)
    a[..., :, :-1, :] = ci[..., :, 1:, :] - ci[..., :, :-1, :]
    b[..., :-1, :, :] = ci[..., 1:, :, :] - ci[..., :-1, :, :]
    nx = table[a + span, b + span]
    ny = table[b + span, a + span]
    div = -nx - ny
    div[..., :, 1:, :] += nx[..., :, :-1, :]
    div[..., 1:, :, :] += ny[..., :-1, :, :]
    shift = p.frac_bits + p.gamma_frac_bits
    u = p.gamma_q * div
    return np.clip(ci - ((u + (1 << (shift - 1))) >> shift), lo, hi)


def tv_window_step(window: np.ndarray, row: int, col: int, h: int, w: int, lo: int, hi: int, p: TVParams) -> np.ndarray:
    """The same step for one output pixel from its 3x3 window (3, 3, C) (padded positions any value):
    what a module fed by a 3x3 sliding window with padding 1 computes at position (row, col)."""
    win = np.asarray(window, dtype=np.int64)
    span = hi - lo
    table = tv_table(span, p)
    # the map restricted to the window, with the positions outside the map masked by the boundary rule
    inside = np.zeros((3, 3), dtype=bool)
    for dy in range(3):
        for dx in range(3):
            inside[dy, dx] = 0 <= row + dy - 1 < h and 0 <= col + dx - 1 < w

    def diff_x(y: int, x: int) -> np.ndarray:  # (D_x c) at window position (y, x)
        return win[y, x + 1] - win[y, x] if inside[y, x] and inside[y, x + 1] else np.zeros(win.shape[-1], np.int64)

    def diff_y(y: int, x: int) -> np.ndarray:
        return win[y + 1, x] - win[y, x] if inside[y, x] and inside[y + 1, x] else np.zeros(win.shape[-1], np.int64)

    def nx(y: int, x: int) -> np.ndarray:
        return table[diff_x(y, x) + span, diff_y(y, x) + span] if inside[y, x] else np.zeros(win.shape[-1], np.int64)

    def ny(y: int, x: int) -> np.ndarray:
        return table[diff_y(y, x) + span, diff_x(y, x) + span] if inside[y, x] else np.zeros(win.shape[-1], np.int64)

    # D_x^T n_x + D_y^T n_y at the centre (1, 1); diff_x(1, 0) needs (2, 0), diff_y(0, 1) needs (0, 2)
    div = nx(1, 0) - nx(1, 1) + ny(0, 1) - ny(1, 1)
    shift = p.frac_bits + p.gamma_frac_bits
    u = p.gamma_q * div
    return np.clip(win[1, 1] - ((u + (1 << (shift - 1))) >> shift), lo, hi)
