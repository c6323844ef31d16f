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

Search thresholds (``hw/threshold_search.sv``; C x T, each row non-decreasing, folded by PE;
NF = C/PE, L = clog2(T + 1) stages): one memory per stage k (0 .. L-1) and lane l, in the file
:func:`threshold_search_file` names; NF * 2^k signed words, word ``f*2^k + p`` is
``thr[f*PE + l, (2p+1)*2^(L-1-k) - 1]``, the threshold stage k compares with when the k result bits
found before it are p; 0 where that index is T or more (the module treats those as +infinity from
the constants, so no word holds a flag). Every threshold is in exactly one memory. A memory deeper
than one row of 18 Kb block RAMs (:func:`search_bank_depth`, the module's ``bank_depth``) is
written as banks of that many words, one file each (:func:`threshold_search_files`).

TV table (``hw/tv_smooth.sv``; :func:`qnnflow.flows.ir.kernels_tv.tv_table` over differences of
span S = hi - lo): the magnitudes only, since T is odd in a and even in b; word ``|a|*(S+1) + |b|``
is ``T[|a|, |b|]``, (S+1)^2 unsigned words of ``frac_bits + 1`` bits.

A ``.mem`` file has one word per line in hexadecimal, ``ceil(word_width/4)`` digits, lowest
address first, no address markers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    "search_stages",
    "BLOCK_SHAPES",
    "block_geometry",
    "fifo_chain_shape",
    "fifo_segment_depth",
    "ROM_ADDRESS_LOADS_MAX",
    "rom_address_loads",
    "rom_in_block_ram",
    "weight_bank_depth",
    "weight_bank_files",
    "threshold_search_file",
    "search_bank_depth",
    "threshold_search_files",
    "search_memories_from_files",
    "threshold_search_words",
    "thresholds_from_search_words",
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


def search_stages(num_t: int) -> int:
    """L = clog2(T + 1): the stages (result bits) of ``hw/threshold_search.sv`` for T thresholds."""
    if num_t < 1:
        raise ValueError(f"a threshold search needs at least 1 threshold, not {num_t}")
    return int(num_t).bit_length()


def threshold_search_file(prefix: str, stage: int, lane: int, bank: int | None = None) -> str:
    """The memory file of ``stage`` and ``lane`` (and ``bank`` of a memory split in banks):
    ``hw/threshold_search.sv``'s ``$sformatf("%s_s%0d_l%0d.mem", PREFIX, k, l)`` or
    ``$sformatf("%s_s%0d_l%0d_b%0d.mem", PREFIX, k, l, b)``."""
    return f"{prefix}_s{stage}_l{lane}.mem" if bank is None else f"{prefix}_s{stage}_l{lane}_b{bank}.mem"


# (depth, width) of one 18 Kb block RAM, ECP5 DP16KD and xc7 RAMB18 alike, deepest first
BLOCK_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

# Yosys' memory_libmap costs on ECP5 of a ROM: a bit in LUTs, an 18 Kb block (the one model of
# both: flows/compile/resources_memory.py reads them from here)
ECP5_ROM_BIT_COST = 1 / 16
ECP5_BLOCK_COST = 128


def block_geometry(depth: int, width: int, shapes=BLOCK_SHAPES) -> tuple[int, int]:
    """(rows, columns) of the cheapest tiling of a ``depth`` x ``width`` memory by one block shape
    (fewest blocks, then fewest rows), as Yosys tiles it."""
    tilings = ((-(-depth // d), -(-width // w)) for d, w in shapes)
    return min(tilings, key=lambda rc: (rc[0] * rc[1], rc[0]))


def fifo_chain_shape(depth: int, seg_d: int) -> tuple[int, int]:
    """``hw/fifo_chain.sv``'s NSEG and SDEPTH: the FIFOs of a chain of ``depth`` words with at most
    ``seg_d`` each (one FIFO of ``depth`` when ``seg_d`` is 0 or not below ``depth``)."""
    nseg = -(-depth // seg_d) if 0 < seg_d < depth else 1
    return nseg, -(-depth // nseg)


def fifo_segment_depth(depth: int, width: int) -> int:
    """``hw/fifo_chain.sv``'s SEG_D for a FIFO of ``depth`` words of ``width`` bits: the depth of the
    block shape of :func:`block_geometry`'s tiling when that tiling has more than one row (a
    multiplexer between the rows' reads, before the register after them); 0 when one row holds it
    (one ``hw/fifo.sv``)."""
    rows, cols = block_geometry(depth, width)
    if rows <= 1:
        return 0
    return next(d for d, w in BLOCK_SHAPES if (-(-depth // d), -(-width // w)) == (rows, cols))


# a ROM in LUTs reads its address in this many LUT4s at most; a wider one goes to block RAM even
# where LUTs would cost less (CNV-w1a1's second convolution at FINN's folding: 36 words of 1,024
# bits, 4,096 LUT4s spread over the chip behind one address register, the critical path)
ROM_ADDRESS_LOADS_MAX = 2048


def rom_address_loads(depth: int, width: int) -> int:
    """The LUT4s that read the address of a ``depth`` x ``width`` ROM in LUTs: for each bit one per
    16 words of the depth rounded up to a power of two (the PFU multiplexers combine them)."""
    return width * max(1, (1 << max(0, (depth - 1).bit_length())) // 16)


def rom_in_block_ram(depth: int, width: int) -> bool:
    """Whether a ``depth`` x ``width`` weight ROM with a registered read goes to block RAM: where
    Yosys puts it on ECP5 by its own costs (the blocks, plus half a unit per bit of the multiplexer
    between rows of blocks, cost less than the bits in LUTs), or where in LUTs its address would
    reach more than :data:`ROM_ADDRESS_LOADS_MAX` LUT4s (``hw/mvau.sv`` then asks for block RAM with
    ``rom_style``)."""
    rows, cols = block_geometry(depth, width)
    cheaper = ECP5_BLOCK_COST * rows * cols + 0.5 * (rows - 1) * width < ECP5_ROM_BIT_COST * depth * width
    return cheaper or rom_address_loads(depth, width) > ROM_ADDRESS_LOADS_MAX


def search_bank_depth(depth: int, width: int) -> int:
    """``hw/threshold_search.sv``'s ``bank_depth``: the words of one bank of a ``depth`` x ``width``
    memory, the depth of the block shape that holds it in the fewest blocks (of equal ones the
    deepest), or ``depth`` itself when that is no deeper."""
    blocks = {d: -(-depth // d) * -(-width // w) for d, w in BLOCK_SHAPES}
    best = min(blocks, key=lambda d: (blocks[d], -d))
    return depth if depth <= best else best


def weight_bank_depth(depth: int, width: int) -> int:
    """``hw/mvau.sv``'s ``W_BANK_D`` for a ``depth`` x ``width`` weight memory: 0 (one memory, read
    straight into the products' register) when it stays in LUTs (:func:`rom_in_block_ram`); for
    block RAM the words of one bank, the block shape's depth of :func:`search_bank_depth` (one bank,
    rounded up to a power of two, when the memory is no deeper than that)."""
    if not rom_in_block_ram(depth, width):
        return 0
    return max(2, 1 << (search_bank_depth(depth, width) - 1).bit_length())


def weight_bank_files(pattern: str, words: Sequence[int], bank_depth: int) -> dict[str, list[int]]:
    """The files of a banked weight memory: ``pattern % b`` (``hw/mvau.sv``'s ``$sformatf(WEIGHT_FILE,
    b)``) -> words ``b * bank_depth`` .. of ``words``, the last bank holding the rest."""
    if bank_depth < 1:
        raise ValueError(f"a bank holds at least one word, not {bank_depth}")
    n = -(-len(words) // bank_depth)
    return {pattern % b: list(words[b * bank_depth : (b + 1) * bank_depth]) for b in range(n)}


def threshold_search_files(
    prefix: str, memories: Sequence[Sequence[Sequence[int]]], width: int
) -> dict[str, list[int]]:
    """The files of :func:`threshold_search_words`'s memories (``[stage][lane]``): file name -> words,
    one file per stage and lane, or per bank of :func:`search_bank_depth` words of a deeper one."""
    files = {}
    for k, lanes in enumerate(memories):
        for lane, words in enumerate(lanes):
            bank = search_bank_depth(len(words), width)
            if bank >= len(words):
                files[threshold_search_file(prefix, k, lane)] = list(words)
                continue
            for b in range(-(-len(words) // bank)):
                files[threshold_search_file(prefix, k, lane, b)] = list(words[b * bank : (b + 1) * bank])
    return files


def _search_indices(stage: int, stages: int) -> np.ndarray:
    """The threshold each word offset p of ``stage`` holds: (2p+1)*2^(L-1-k) - 1, p = 0 .. 2^k - 1."""
    return (2 * np.arange(1 << stage, dtype=np.int64) + 1) * (1 << (stages - 1 - stage)) - 1


def threshold_search_words(thresholds: np.ndarray, pe: int, width: int) -> list[list[list[int]]]:
    """Thresholds (C, T), each row non-decreasing -> the memories of ``hw/threshold_search.sv``:
    ``[stage][lane]`` -> NF * 2^stage signed ``width``-bit words (see module doc). ValueError,
    naming the first such channel, when a row decreases: the search would then count wrongly."""
    t = np.asarray(thresholds)
    if t.ndim != 2:
        raise ValueError(f"thresholds must be a (channels, T) matrix, not shape {t.shape}")
    c, nt = t.shape
    _check_fold(c, pe, "the channel count", "PE")
    falling = np.flatnonzero(np.any(np.diff(t, axis=1) < 0, axis=1))
    if falling.size:
        ch = int(falling[0])
        raise ValueError(
            f"a threshold search needs each channel's thresholds non-decreasing; channel {ch} is not: "
            f"{t[ch].tolist()}"
        )
    stages, nf = search_stages(nt), c // pe
    folded = t.reshape(nf, pe, nt).astype(np.int64)
    memories = []
    for k in range(stages):
        idx = _search_indices(k, stages)
        valid = idx < nt
        lanes = []
        for lane in range(pe):
            vals = np.zeros((nf, 1 << k), dtype=np.int64)
            vals[:, valid] = folded[:, lane, idx[valid]]
            lanes.append(pack(vals.reshape(-1), width, signed=True))
        memories.append(lanes)
    return memories


def search_memories_from_files(
    files: Mapping[str, Sequence[int]], prefix: str, channels: int, num_t: int, pe: int, width: int
) -> list[list[list[int]]]:
    """The inverse of :func:`threshold_search_files`: file name -> words back to the memories
    ``[stage][lane]`` (banks joined). KeyError naming a file the layout needs and ``files`` lacks."""
    nf, memories = channels // pe, []
    for k in range(search_stages(num_t)):
        depth = nf << k
        bank = search_bank_depth(depth, width)
        lanes = []
        for lane in range(pe):
            if bank >= depth:
                names = [threshold_search_file(prefix, k, lane)]
            else:
                names = [threshold_search_file(prefix, k, lane, b) for b in range(-(-depth // bank))]
            missing = [n for n in names if n not in files]
            if missing:
                raise KeyError(f"no threshold search file {missing[0]}")
            lanes.append([int(w) for n in names for w in files[n]])
        memories.append(lanes)
    return memories


def thresholds_from_search_words(
    memories: Sequence[Sequence[Sequence[int]]], channels: int, num_t: int, pe: int, width: int
) -> np.ndarray:
    """The inverse of :func:`threshold_search_words`: the memories ``[stage][lane]`` -> thresholds
    (C, T). ValueError when their number or depth is not the layout's, or a word beyond T is not 0."""
    stages, nf = search_stages(num_t), channels // pe
    if len(memories) != stages or any(len(lanes) != pe for lanes in memories):
        shape = [len(lanes) for lanes in memories]
        raise ValueError(f"expected {stages} stages of {pe} lanes for T={num_t}, got lanes per stage {shape}")
    thr = np.zeros((nf, pe, num_t), dtype=np.int64)
    for k, lanes in enumerate(memories):
        idx = _search_indices(k, stages)
        valid = idx < num_t
        for lane, words in enumerate(lanes):
            if len(words) != nf << k:
                raise ValueError(f"stage {k} lane {lane}: expected {nf << k} words (NF={nf} x 2^{k}), got {len(words)}")
            vals = unpack(words, 1, width, signed=True).reshape(nf, 1 << k)
            if np.any(vals[:, ~valid]):
                raise ValueError(f"stage {k} lane {lane}: a word beyond the {num_t} thresholds is not 0")
            thr[:, lane, idx[valid]] = vals[:, valid]
    return thr.reshape(channels, num_t)


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
