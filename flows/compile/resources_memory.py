"""The memory model of the resource estimates (:mod:`qnnflow.flows.compile.resources`): where Yosys'
``memory_libmap`` puts a memory of a given depth and width (soft logic, LUT RAM or block RAM, by
comparing its own costs), and what that costs on ECP5 and xc7."""

from __future__ import annotations

import math
from dataclasses import dataclass

from qnnflow.flows.codegen import memfiles

# the shapes of one 18 Kb block RAM are memfiles.BLOCK_SHAPES (ECP5 DP16KD / PDPW16KD, xc7 RAMB18 /
# SDP offer the same ones); xc7 also pairs two into a RAMB36 (twice the depth, or 72 bits wide)
_BRAM36_SHAPES = ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72))


def _clog2(n: int) -> int:
    """$clog2 with a floor of 1, as the RTL sizes its counters."""
    return max(1, math.ceil(math.log2(max(2, n))))


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


# -- memories --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Where Yosys puts one memory: ``kind`` "logic", "lutram" or "bram", with the LUTs it takes
    (LUT RAM, read multiplexers, a logic ROM at its plain rate), block RAMs (18 Kb units) and the
    registers it adds (+) or absorbs (-) relative to the RTL's own read register."""

    kind: str
    luts: float
    brams: int
    ffs: int


def memory(
    depth: int, width: int, family: str, *, rom: bool, sync_read: bool = True, single_port: bool = False,
    block: bool = False,
) -> Memory:  # fmt: skip
    """The placement Yosys' ``memory_libmap`` chooses for a ``depth`` x ``width`` memory: the
    cheapest by its own cost model (soft logic: a bit of RAM costs 1, of ROM 1/16 on ECP5 and 1/64
    on xc7; LUT RAM and block RAM: their library costs, plus half a unit per multiplexed read bit).

    ``rom``: no write port (initialized from a file), so no LUT RAM (Yosys prunes it for ROMs).
    ``sync_read``: the read data is registered (block RAM possible). ``single_port``: the read and
    the write share the address (xc7 single-port LUT RAM). ``block``: the RTL asks for block RAM
    (``rom_style``/``ram_style`` "block"), so Yosys compares only the block RAM shapes."""
    if depth * width == 0:
        return Memory("logic", 0, 0, 0)
    if block:
        return min(_bram_options(depth, width, family, rom), key=lambda o: o[0])[1]
    options = [_soft_logic(depth, width, family, rom)]
    if not rom:
        options += _lutram_options(depth, width, family, sync_read, single_port)
    if sync_read:
        options += _bram_options(depth, width, family, rom)
    return min(options, key=lambda o: o[0])[1]


def _soft_logic(depth: int, width: int, family: str, rom: bool) -> tuple[float, Memory]:
    """(Yosys' cost, placement) of a memory in soft logic: a ROM is a LUT tree over the address
    (ECP5: one LUT4 per 16 words of a column, rounded up to a power of two as the PFU muxes combine
    them; xc7: about one LUT6 per 64 words, MUXF7/F8 and shared decoding making up for the
    rounding); a RAM is a register per bit with a write decoder and a read multiplexer."""
    bits = depth * width
    ecp5 = family == "ecp5"
    if rom:
        luts = width * _pow2(max(depth, 16)) / 16 if ecp5 else width * max(1.0, depth / 64)
        return bits * (memfiles.ECP5_ROM_BIT_COST if ecp5 else 1 / 64), Memory("logic", luts, 0, 0)
    return bits, Memory("logic", (0.55 if ecp5 else 0.57) * bits, 0, bits)


def _lutram_options(
    depth: int, width: int, family: str, sync_read: bool, single_port: bool
) -> list[tuple[float, Memory]]:
    """(Yosys' cost, placement) of a RAM in each LUT RAM primitive of ``family``."""
    if family == "ecp5":
        # TRELLIS_DPR16X4 (16 x 4, cost 4; 8 LUT4 places); rows above 16 words are multiplexed
        rows = math.ceil(depth / 16)
        n = rows * math.ceil(width / 4)
        cost = 4 * n + 0.5 * (rows - 1) * width + (3 if sync_read else 0)
        return [(cost, Memory("lutram", 8 * n + 1.2 * (rows - 1) * width, 0, 0))]
    if single_port:
        # RAM64X1S .. RAM256X1S: one LUT site per 64 bits
        rows = math.ceil(depth / 256)
        sites = width * math.ceil(depth / 64)
        return [(sites * 2 + 0.5 * (rows - 1) * width, Memory("lutram", sites + 0.8 * (rows - 1) * width, 0, 0))]
    # RAM32M (32 x 6) or RAM64M (64 x 3) simple dual port, 4 LUT sites each
    options = []
    for d, w in ((32, 6), (64, 3)):
        rows = math.ceil(depth / d)
        n = rows * math.ceil(width / w)
        cost = n + 7 * rows * width / w + 0.5 * (rows - 1) * width + (2 if sync_read else 0)
        options.append((cost, Memory("lutram", 4 * n + 0.8 * (rows - 1) * width, 0, 0)))
    return options


def _bram_options(depth: int, width: int, family: str, rom: bool) -> list[tuple[float, Memory]]:
    """(Yosys' cost, placement) of a memory with a registered read in block RAM: 18 Kb blocks, and
    on xc7 also 36 Kb ones."""
    ecp5 = family == "ecp5"
    options = []
    units = [(memfiles.BLOCK_SHAPES, memfiles.ECP5_BLOCK_COST if ecp5 else 129, 1)]
    units += [] if ecp5 else [(_BRAM36_SHAPES, 257, 2)]
    for shapes, unit_cost, size in units:
        rows, cols = memfiles.block_geometry(depth, width, shapes)
        cost = unit_cost * rows * cols + 0.5 * (rows - 1) * width
        luts = (0.9 if ecp5 else 0.35) * (rows - 1) * width
        ffs = -width  # the read register is the block RAM's
        if ecp5 and not rom:
            # DP16KD ports are not read-during-write safe across ports: Yosys emulates it with
            # a bypass register (data, address, flag) and a multiplexer, and keeps the output
            # register in the fabric (Yosys charges 2 per data bit for it)
            cost += 2 * width
            luts += 1.2 * width
            ffs = width + _clog2(depth) + 2
        options.append((cost, Memory("bram", luts, rows * cols * size, ffs)))
    return options


# -- logic costs per family ------------------------------------------------------------------------

# Per-unit costs of each term, in LUT4 places (ECP5) or LUT6 sites (xc7). Fitted against Yosys
# (see the module docstring) and rounded; the comments say what each unit is.
