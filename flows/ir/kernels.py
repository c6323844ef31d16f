"""Golden integer reference for every streaming layer of the RTL library (``hw/``).

These pure-numpy functions define what each hardware layer computes. The hardware layers'
``execute`` methods call them, and the cocotb scoreboards in ``sim/`` compare the RTL against
them bit for bit, so there is exactly one definition of each function.

Conventions (the same as the RTL, see DESIGN.md "Stream and RTL conventions"):

* All arrays hold integers; results are ``int64``.
* Tensors are channels-last (NHWC); the last axis is the channel / feature axis.
* Bipolar values are given as -1 / +1 (the one-bit hardware code 0 / 1 is a matter of
  :mod:`qnnflow.flows.codegen.memfiles`), ternary values as -1 / 0 / +1.
* Multi-threshold activation: with thresholds ``T`` (one ascending row per channel) the output
  is ``(number of t in T[c] with t <= value) + out_offset``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "value_range",
    "accumulator_range",
    "signed_width",
    "accumulator_width",
    "threshold_width",
    "type_range",
    "exact_matmul",
    "clip_thresholds",
    "mvau",
    "mac",
    "thresholding",
    "conv_out_dim",
    "sliding_window",
    "maxpool",
    "label_select",
    "label_value_width",
    "add_streams",
    "duplicate_streams",
]


# ---------------------------------------------------------------------------------------------
# value ranges and widths
# ---------------------------------------------------------------------------------------------
def value_range(bits: int, signed: bool = False, *, bipolar: bool = False) -> tuple[int, int]:
    """The (lowest, highest) value of a data type: ``bits``-bit two's complement or unsigned,
    or bipolar {-1, +1} (``bits`` is then ignored). Ternary is ``value_range(2, True)`` narrowed
    by the caller to (-1, 1) if wanted."""
    if bipolar:
        return -1, 1
    if bits < 1:
        raise ValueError(f"a data type needs at least 1 bit, not {bits}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def accumulator_range(
    mw: int, x_range: tuple[int, int], w_range: tuple[int, int], *, xnor: bool = False
) -> tuple[int, int]:
    """Bounds of an MVAU accumulator over ``mw`` products of values in ``x_range`` and ``w_range``.

    With ``xnor`` (input and weights both bipolar) the accumulator is the XNOR-popcount, 0..mw.
    """
    if mw < 1:
        raise ValueError(f"MW must be at least 1, not {mw}")
    if xnor:
        return 0, mw
    corners = [a * b for a in x_range for b in w_range]
    return mw * min(corners), mw * max(corners)


def signed_width(lo: int, hi: int) -> int:
    """Fewest bits of a two's complement number that holds every integer in [lo, hi]."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


# hw/mvau.sv and hw/thresholding.sv hold accumulators and thresholds of at most this many bits
MAX_ACC_BITS = 32


def accumulator_width(
    mw: int, x_range: tuple[int, int], w_range: tuple[int, int], *, xnor: bool = False, where: str = ""
) -> int:
    """ACC_W for ``hw/mvau.sv`` and the width of its thresholds: the one derivation of it, used by
    the passes, the RTL backends and the resource estimates alike.

    A signed width holding [lo, hi + 1] of :func:`accumulator_range` (at least 2 bits): the
    ``+ 1`` leaves room for a threshold that never fires once clipped by :func:`clip_thresholds`.
    ``x_range`` / ``w_range`` are the value ranges of the types (:func:`type_range`: ternary is
    -1..1, not the -2..1 of its 2-bit code). ValueError, naming ``where``, above :data:`MAX_ACC_BITS`.
    """
    lo, hi = accumulator_range(mw, x_range, w_range, xnor=xnor)
    return _checked_width(lo, hi, where, f"an accumulator over MW={mw} products")


def threshold_width(lo: int, hi: int, *, where: str = "") -> int:
    """THR_W for thresholds on values in [lo, hi] (``hw/thresholding.sv``): signed, [lo, hi + 1]."""
    return _checked_width(lo, hi, where, "thresholds")


def _checked_width(lo: int, hi: int, where: str, what: str) -> int:
    bits = max(signed_width(lo, hi + 1), 2)
    if bits > MAX_ACC_BITS:
        at = f"{where}: " if where else ""
        raise ValueError(
            f"{at}{what} needs {bits} bits (values {lo}..{hi}); the hardware holds at most {MAX_ACC_BITS}: "
            "use fewer inputs per output or narrower weights / activations"
        )
    return bits


def type_range(name: str) -> tuple[int, int]:
    """(lowest, highest) value of a qonnx integer DataType name: BIPOLAR and TERNARY are -1..1,
    INTn / UINTn / BINARY their two's complement / unsigned ranges."""
    if name in ("BIPOLAR", "TERNARY"):
        return -1, 1
    if name == "BINARY":
        return 0, 1
    for prefix, signed in (("UINT", False), ("INT", True)):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return value_range(int(name[len(prefix) :]), signed)
    raise ValueError(f"not an integer data type: {name!r} (expected BIPOLAR, TERNARY, BINARY, INTn or UINTn)")


def clip_thresholds(thresholds: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clip thresholds to [lo, hi + 1] for values known to lie in [lo, hi].

    For every value v in [lo, hi], ``t <= v`` is unchanged by the clip, so the activation is
    unchanged; the clipped thresholds then fit the value's width plus one bit (or ACC_W from
    :func:`accumulator_width`). Non-integer thresholds are rounded up first (``t <= v`` for an
    integer v is the same as ``ceil(t) <= v``).
    """
    t = np.ceil(np.asarray(thresholds, dtype=np.float64))
    return np.clip(t, lo, hi + 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------
def _as_int(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr)):
            return arr.astype(np.int64)
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _multithreshold(values: np.ndarray, thresholds: np.ndarray, out_offset: int) -> np.ndarray:
    """``count(t <= v) + out_offset`` with one threshold row per channel (last axis of values)."""
    thr = _as_int(thresholds, "thresholds")
    if thr.ndim != 2 or thr.shape[0] != values.shape[-1]:
        raise ValueError(f"thresholds must have shape (channels={values.shape[-1]}, T), not {thr.shape}")
    if thr.shape[1] > 1 and np.any(np.diff(thr, axis=1) < 0):
        raise ValueError("each row of thresholds must be sorted ascending")
    counts = (thr <= values[..., None]).sum(axis=-1)
    return counts.astype(np.int64) + int(out_offset)


# float64 (float32) holds every integer below 2**53 (2**24) exactly, so a BLAS product of integer
# matrices in it is exact when no partial sum can reach that; int64 matmul has no BLAS, ~30x slower
_F64_EXACT = 1 << 53
_F32_EXACT = 1 << 24


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of integer arrays, ``a`` (..., K) by ``b`` (K, M), exact, as int64: through
    float32 / float64 BLAS when every partial sum stays below 2**24 / 2**53 in magnitude (bounded
    from the operands' largest magnitudes), else in int64. ``a`` is multiplied as one 2-D matrix
    (a stacked matmul would run one small product per leading index)."""
    k = a.shape[-1]
    bound = k * int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0))
    flat = a.reshape(-1, k)
    if bound < _F32_EXACT:
        out = flat.astype(np.float32) @ b.astype(np.float32)
    elif bound < _F64_EXACT:
        out = flat.astype(np.float64) @ b.astype(np.float64)
    else:
        out = flat.astype(np.int64) @ b.astype(np.int64)
    return out.astype(np.int64).reshape(*a.shape[:-1], b.shape[-1])


def mvau(
    x: np.ndarray,
    w: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    out_offset: int = 0,
    x_bipolar: bool = False,
    w_bipolar: bool = False,
) -> np.ndarray:
    """Matrix-vector(-activation): ``x`` (..., MW) by ``w`` (MH, MW) -> (..., MH) int64.

    The accumulator is the dot product ``x @ w.T``, except when both ``x_bipolar`` and
    ``w_bipolar``: then it is the XNOR-popcount, the number of positions where the signs agree,
    ``(dot + MW) / 2`` (FINN's convention). Bipolar operands are given as -1/+1.
    With ``thresholds`` (MH, T), ascending per row, the output is
    ``count(t <= acc) + out_offset``; without, the accumulator itself.
    """
    xa = _as_int(x, "x")
    wa = _as_int(w, "w")
    if wa.ndim != 2 or xa.shape[-1] != wa.shape[1]:
        raise ValueError(f"x (..., MW) and w (MH, MW) disagree: x {xa.shape}, w {wa.shape}")
    return mac(
        xa, wa, lambda a, b: exact_matmul(a, b.T), thresholds=thresholds, out_offset=out_offset,
        x_bipolar=x_bipolar, w_bipolar=w_bipolar,
    )  # fmt: skip


def mac(
    xa: np.ndarray,
    wa: np.ndarray,
    dot: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    thresholds: np.ndarray | None,
    out_offset: int,
    x_bipolar: bool,
    w_bipolar: bool,
) -> np.ndarray:
    """The arithmetic the MAC layers (:func:`mvau`, :func:`qnnflow.flows.ir.kernels_dw.vvau`) share,
    on integer operands whose shapes the caller checked: ``wa`` holds one row of products per
    output channel. Checks that the operands declared bipolar are -1/+1; the accumulator is
    ``dot(xa, wa)``, with both bipolar the XNOR-popcount ``(dot + products per row) / 2``; with
    ``thresholds`` the output is ``count(t <= acc) + out_offset``, without the accumulator (int64).
    """
    for flag, arr, name in ((x_bipolar, xa, "x"), (w_bipolar, wa, "w")):
        if flag and not np.all(np.abs(arr) == 1):
            raise ValueError(f"{name} is declared bipolar but holds values other than -1/+1")
    acc = dot(xa, wa)
    if x_bipolar and w_bipolar:
        acc = (acc + wa.shape[1]) // 2
    if thresholds is None:
        return acc.astype(np.int64)
    return _multithreshold(acc, thresholds, out_offset)


def thresholding(x: np.ndarray, thresholds: np.ndarray, out_offset: int = 0) -> np.ndarray:
    """Multi-threshold activation per channel (last axis of ``x``): ``count(t <= x) + out_offset``.

    ``thresholds`` has shape (C, T), ascending per row.
    """
    return _multithreshold(_as_int(x, "x"), thresholds, out_offset)


def conv_out_dim(in_dim: int, k: int, stride: int = 1, pad: int = 0) -> int:
    """Output size of a window of ``k`` moved by ``stride`` over ``in_dim`` + ``pad`` on each side."""
    if k < 1 or stride < 1 or pad < 0:
        raise ValueError(f"need k >= 1, stride >= 1, pad >= 0; got k={k}, stride={stride}, pad={pad}")
    if in_dim + 2 * pad < k:
        raise ValueError(f"kernel {k} is larger than the padded input {in_dim} + 2*{pad}")
    return (in_dim + 2 * pad - k) // stride + 1


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def sliding_window(
    x: np.ndarray,
    k: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    pad_value: int = 0,
) -> np.ndarray:
    """im2col: ``x`` NHWC (N, H, W, C) -> (N, OH, OW, KH*KW*C), each patch in (ky, kx, c) order.

    ``k``, ``stride`` and ``pad`` are ints or (rows, cols) pairs; ``pad`` positions are filled
    with ``pad_value`` on every side; the output size is :func:`conv_out_dim` (windows that would
    stick out past the bottom / right padding are dropped).
    """
    xa = _as_int(x, "x")
    if xa.ndim != 4:
        raise ValueError(f"x must be NHWC (4 dimensions), not shape {xa.shape}")
    (kh, kw), (sh, sw), (ph, pw) = _pair(k), _pair(stride), _pair(pad)
    n, h, w, c = xa.shape
    oh, ow = conv_out_dim(h, kh, sh, ph), conv_out_dim(w, kw, sw, pw)
    padded = np.full((n, h + 2 * ph, w + 2 * pw, c), int(pad_value), dtype=np.int64)
    padded[:, ph : ph + h, pw : pw + w, :] = xa
    # (N, H', W', C, KH, KW) windows as a view, strided to the output positions, then (ky, kx, c) order
    win = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, : sh * oh : sh, : sw * ow : sw]
    return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n, oh, ow, kh * kw * c)


def maxpool(x: np.ndarray, k: int | tuple[int, int]) -> np.ndarray:
    """Max over KH x KW windows with stride (KH, KW): NHWC (N, H, W, C) -> (N, H//KH, W//KW, C).
    ``k`` is an int (square) or a (rows, cols) pair.

    Rows and columns past the last whole window are ignored (floor), like the RTL.
    """
    xa = _as_int(x, "x")
    if xa.ndim != 4:
        raise ValueError(f"x must be NHWC (4 dimensions), not shape {xa.shape}")
    kh, kw = _pair(k)
    n, h, w, c = xa.shape
    oh, ow = h // kh, w // kw
    if oh < 1 or ow < 1:
        raise ValueError(f"pool size {kh}x{kw} is larger than the input {h}x{w}")
    win = xa[:, : oh * kh, : ow * kw, :].reshape(n, oh, kh, ow, kw, c)
    return win.max(axis=(2, 4))


def label_select(
    x: np.ndarray, k: int = 1, mul: np.ndarray | None = None, offset: np.ndarray | None = None, shift: int = 0
) -> np.ndarray:
    """Indices of the ``k`` largest values along the last axis, largest first; ties go to the
    lowest index (for k = 1 exactly ``numpy.argmax``). Shape (..., k).

    With per-class integers ``mul`` / ``offset`` (one per class, or one for all) the values compared
    are ``v = mul * x * 2**shift + offset`` (exact: ValueError if ``v`` could leave int64)."""
    xa = _as_int(x, "x")
    if not 1 <= k <= xa.shape[-1]:
        raise ValueError(f"k must be in 1..{xa.shape[-1]}, not {k}")
    if mul is not None or offset is not None or shift:
        m = _as_int(np.asarray(1 if mul is None else mul), "mul")
        n = _as_int(np.asarray(0 if offset is None else offset), "offset")
        bound = (int(np.abs(xa).max(initial=0)) * int(np.abs(m).max()) << shift) + int(np.abs(n).max())
        if bound >= 1 << 62:
            raise ValueError(f"label values up to {bound} do not fit 64 bits")
        xa = (xa * m << shift) + n
    order = np.argsort(-xa, axis=-1, kind="stable")
    return order[..., :k].astype(np.int64)


def label_value_width(x_range: tuple[int, int], mul, offset, shift: int, elem_bits: int) -> int:
    """VAL_W of ``hw/label_select.sv``'s per-class map: a signed width holding ``mul * x * 2**shift +
    offset`` for every class and every x in ``x_range``, and at least the shifted input and the
    constants (the module's configuration checks)."""
    lo, hi = x_range
    ends = [(int(m) * x << shift) + int(n) for m, n in zip(mul, offset, strict=True) for x in (lo, hi)]
    consts = [signed_width(min(v), max(v)) for v in (mul, offset)]
    return max(signed_width(min(ends), max(ends)), elem_bits + shift + (0 if lo < 0 else 1), *consts)


def add_streams(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise sum of two equally shaped integer tensors (a residual join)."""
    aa, ba = _as_int(a, "a"), _as_int(b, "b")
    if aa.shape != ba.shape:
        raise ValueError(f"add_streams needs equal shapes, got {aa.shape} and {ba.shape}")
    return aa + ba


def duplicate_streams(x: np.ndarray, n: int = 2) -> list[np.ndarray]:
    """``n`` copies of ``x`` (a residual fork)."""
    xa = _as_int(x, "x")
    return [xa.copy() for _ in range(n)]
