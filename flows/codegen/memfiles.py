"""The one definition of how weights and thresholds are laid out in ``$readmemh`` files.

Codegen writes the memory files of ``hw/mvau.sv``, ``hw/vvau.sv`` and ``hw/thresholding.sv`` with these
functions, and the testbenches use them (and their inverses) too. The same element packing is
used for stream beats.

Element packing (DESIGN.md, "Stream and RTL conventions"): a word of ``n`` elements of ``width``
bits holds element i at bits ``[i*width +: width]`` (element 0 in the LSBs). Signed values are
two's complement; bipolar values are one bit, 0 meaning -1 and 1 meaning +1.

MVAU weights (MH x MW, folded by PE rows and SIMD columns; NF = MH/PE, SF = MW/SIMD):
one word per (nf, sf) at address ``nf*SF + sf``, NF*SF words of PE*SIMD elements; element
``pe*SIMD + s`` is ``w[nf*PE + pe, sf*SIMD + s]``.

VVAU weights (``hw/vvau.sv``; C channels x K*K window positions, folded by PE channels and SIMD
window positions; NF = C/PE, SF = K*K/SIMD): one word per (sf, nf) at address ``sf*NF + nf`` --
the order in which the (ky, kx, c) window stream needs them -- NF*SF words of PE*SIMD elements;
element ``pe*SIMD + s`` is ``w[nf*PE + pe, sf*SIMD + s]`` (the MVAU's element order).

Thresholds (C x T, one ascending row per channel / MVAU row, folded by PE): one word per channel
fold ``nf`` at address ``nf``, C/PE words of PE*T signed elements; element ``pe*T + t`` is
``thr[nf*PE + pe, t]``.

TV table (``hw/tv_smooth.sv``; :func:`qnnflow.flows.ir.kernels_tv.tv_table` over differences of
span S = hi - lo): the magnitudes only, since T is odd in a and even in b; word ``|a|*(S+1) + |b|``
is ``T[|a|, |b|]``, (S+1)^2 unsigned words of ``frac_bits + 1`` bits.

A ``.mem`` file has one word per line in hexadecimal, ``ceil(word_width/4)`` digits, lowest
address first, no address markers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from qnnflow.flows.ir.kernels_tv import TVParams, tv_table

__all__ = [
    "encode",
    "decode",
    "pack",
    "unpack",
    "mvau_weight_words",
    "mvau_weights_from_words",
    "vvau_weight_words",
    "vvau_weights_from_words",
    "threshold_words",
    "thresholds_from_words",
    "label_map_words",
    "tv_table_words",
    "write_memh",
    "read_memh",
]


def encode(values: np.ndarray, width: int, *, signed: bool = False, bipolar: bool = False) -> np.ndarray:
    """Integer values -> their ``width``-bit codes (uint64). Raises if a value does not fit."""
    v = np.asarray(values, dtype=np.int64)
    if bipolar:
        if not np.all(np.abs(v) == 1):
            raise ValueError("bipolar values must be -1 or +1")
        return (v > 0).astype(np.uint64)
    if not 1 <= width <= 63:
        raise ValueError(f"element width must be in 1..63 bits, not {width}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"values in [{v.min()}, {v.max()}] do not fit {width}-bit {kind} [{lo}, {hi}]")
    return (v & ((1 << width) - 1)).astype(np.uint64)


def decode(codes: np.ndarray, width: int, *, signed: bool = False, bipolar: bool = False) -> np.ndarray:
    """``width``-bit codes -> integer values (int64); the inverse of :func:`encode`."""
    c = np.asarray(codes, dtype=np.uint64).astype(np.int64) & ((1 << width) - 1)
    if bipolar:
        return np.where(c & 1, 1, -1).astype(np.int64)
    if signed:
        c = np.where(c >= (1 << (width - 1)), c - (1 << width), c)
    return c.astype(np.int64)


def pack(values: np.ndarray, width: int, *, signed: bool = False, bipolar: bool = False) -> list[int]:
    """Rows of elements -> words: ``values`` (words, n) -> one Python int per row, element i at
    bits ``[i*width +: width]``. A 1-D ``values`` is one element per word."""
    v = np.asarray(values)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(f"pack needs a (words, elements) array, not shape {v.shape}")
    w = 1 if bipolar else width
    codes = encode(v, w, signed=signed, bipolar=bipolar)
    words = []
    for row in codes.tolist():
        word = 0
        for i, code in enumerate(row):
            word |= int(code) << (i * w)
        words.append(word)
    return words


def unpack(words: Iterable[int], n: int, width: int, *, signed: bool = False, bipolar: bool = False) -> np.ndarray:
    """Words -> (words, n) int64 values; the inverse of :func:`pack`."""
    w = 1 if bipolar else width
    mask = (1 << w) - 1
    codes = np.array([[(int(word) >> (i * w)) & mask for i in range(n)] for word in words], dtype=np.uint64)
    return decode(codes.reshape(-1, n), w, signed=signed, bipolar=bipolar)


def _check_fold(total: int, fold: int, what: str, fold_name: str) -> None:
    if fold < 1 or total % fold:
        raise ValueError(f"{fold_name} must divide {what} ({total}), not {fold}")


# The word order of the weight memories, as the axes of the folded weights (nf, pe, sf, s) in the
# order of (address, element): element pe*SIMD + s in both; hw/mvau.sv's address is nf*SF + sf,
# hw/vvau.sv's sf*NF + nf (the order of the (ky, kx, c) window stream)
_MVAU_ORDER = (0, 2, 1, 3)
_VVAU_ORDER = (2, 0, 1, 3)


def _weight_matrix(w: np.ndarray, what: str) -> np.ndarray:
    """``w`` as an array; ValueError unless it is two-dimensional, as ``what`` says it must be."""
    wa = np.asarray(w)
    if wa.ndim != 2:
        raise ValueError(f"{what}, not shape {wa.shape}")
    return wa


def _folded_words(
    wa: np.ndarray, pe: int, simd: int, width: int, signed: bool, bipolar: bool, names: tuple[str, str],
    order: tuple[int, ...],
) -> list[int]:  # fmt: skip
    """Weights (rows, cols) folded by PE rows (``names[0]``) and SIMD columns (``names[1]``) -> the
    NF*SF words of PE*SIMD elements in the word ``order`` (above)."""
    rows, cols = wa.shape
    _check_fold(rows, pe, names[0], "PE")
    _check_fold(cols, simd, names[1], "SIMD")
    nf, sf = rows // pe, cols // simd
    tiles = wa.reshape(nf, pe, sf, simd).transpose(order).reshape(nf * sf, pe * simd)
    return pack(tiles, width, signed=signed, bipolar=bipolar)


def _unfolded(
    words: Sequence[int], rows: int, cols: int, pe: int, simd: int, width: int, signed: bool, bipolar: bool,
    order: tuple[int, ...],
) -> np.ndarray:  # fmt: skip
    """The inverse of :func:`_folded_words`: words -> weights (rows, cols)."""
    nf, sf = rows // pe, cols // simd
    if len(words) != nf * sf:
        folds = {0: f"NF={nf}", 2: f"SF={sf}"}  # named in the order of the address
        raise ValueError(f"expected {nf * sf} weight words ({folds[order[0]]} x {folds[order[1]]}), got {len(words)}")
    tiles = unpack(words, pe * simd, width, signed=signed, bipolar=bipolar)
    folded = tuple((nf, pe, sf, simd)[a] for a in order)
    return tiles.reshape(folded).transpose(tuple(int(a) for a in np.argsort(order))).reshape(rows, cols)


def mvau_weight_words(
    w: np.ndarray, pe: int, simd: int, width: int, *, signed: bool = False, bipolar: bool = False
) -> list[int]:
    """Weights (MH, MW) -> the NF*SF words of ``hw/mvau.sv``'s weight memory (see module doc)."""
    wa = _weight_matrix(w, "weights must be a (MH, MW) matrix")
    return _folded_words(wa, pe, simd, width, signed, bipolar, ("MH", "MW"), _MVAU_ORDER)


def mvau_weights_from_words(
    words: Sequence[int],
    mh: int,
    mw: int,
    pe: int,
    simd: int,
    width: int,
    *,
    signed: bool = False,
    bipolar: bool = False,
) -> np.ndarray:
    """The inverse of :func:`mvau_weight_words`: words -> weights (MH, MW)."""
    return _unfolded(words, mh, mw, pe, simd, width, signed, bipolar, _MVAU_ORDER)


def vvau_weight_words(
    w: np.ndarray, pe: int, simd: int, width: int, *, signed: bool = False, bipolar: bool = False
) -> list[int]:
    """Depthwise weights (C, K*K) -> the SF*NF words of ``hw/vvau.sv``'s weight memory (module doc)."""
    wa = _weight_matrix(w, "depthwise weights must be a (channels, K*K) matrix")
    return _folded_words(wa, pe, simd, width, signed, bipolar, ("the channel count", "K*K"), _VVAU_ORDER)


def vvau_weights_from_words(
    words: Sequence[int],
    channels: int,
    kk: int,
    pe: int,
    simd: int,
    width: int,
    *,
    signed: bool = False,
    bipolar: bool = False,
) -> np.ndarray:
    """The inverse of :func:`vvau_weight_words`: words -> depthwise weights (C, K*K)."""
    return _unfolded(words, channels, kk, pe, simd, width, signed, bipolar, _VVAU_ORDER)


def threshold_words(thresholds: np.ndarray, pe: int, width: int) -> list[int]:
    """Thresholds (C, T) -> the C/PE words of a threshold memory, signed ``width``-bit elements."""
    t = np.asarray(thresholds)
    if t.ndim != 2:
        raise ValueError(f"thresholds must be a (channels, T) matrix, not shape {t.shape}")
    c, nt = t.shape
    _check_fold(c, pe, "the channel count", "PE")
    return pack(t.reshape(c // pe, pe * nt), width, signed=True)


def thresholds_from_words(words: Sequence[int], channels: int, num_t: int, pe: int, width: int) -> np.ndarray:
    """The inverse of :func:`threshold_words`: words -> thresholds (C, T)."""
    return unpack(words, pe * num_t, width, signed=True).reshape(channels, num_t)


def write_memh(path: str | Path, words: Sequence[int], word_width: int) -> Path:
    """Write ``words`` to a ``$readmemh`` file, one ``ceil(word_width/4)``-digit hex word per line."""
    digits = max(1, -(-word_width // 4))
    limit = 1 << word_width
    lines = []
    for addr, word in enumerate(words):
        if not 0 <= int(word) < limit:
            raise ValueError(f"word {addr} ({word:#x}) does not fit {word_width} bits")
        lines.append(f"{int(word):0{digits}x}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_memh(path: str | Path) -> list[int]:
    """Read the words of a ``$readmemh`` file written by :func:`write_memh` (comments allowed)."""
    words = []
    for line in Path(path).read_text().splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            words.append(int(text.replace("_", ""), 16))
    return words


def label_map_words(values: Sequence[int], pe: int, width: int) -> list[int]:
    """Per-class constants of ``hw/label_select.sv`` (multipliers or offsets, one per class) -> the
    NUM/PE words of its memory: word f holds class f*PE+e at element e, signed ``width``-bit."""
    v = np.asarray(values, dtype=np.int64).reshape(-1, 1)
    return threshold_words(v, pe, width)


def tv_table_words(span: int, params: TVParams) -> tuple[list[int], int]:
    """The table of ``hw/tv_smooth.sv`` for codes of span ``span`` (hi - lo): its words and their
    width (``frac_bits + 1``): word ``|a|*(span+1) + |b|`` = T[|a|, |b|] (>= 0)."""
    t = tv_table(span, params)[span:, span:]  # a, b >= 0
    return [int(v) for v in t.reshape(-1)], params.frac_bits + 1
