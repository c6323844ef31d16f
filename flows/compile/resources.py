"""Analytical resource estimates of the hardware layers, for Lattice ECP5 and Xilinx 7-series.

Each layer is estimated as the ``hw/`` module its RTL backend instantiates, from that module's
parameters (:func:`module_estimate`; :func:`layer_params` gives the parameters of a layer without
reading its initializers). The figures are what Yosys 0.70 (yowasp) reports for the module
synthesized alone:

- ECP5 ``LUT4``: LUT4 cells + 2 per CCU2C (a carry cell is two LUT4 places) + 8 per
  TRELLIS_DPR16X4 (the LUT places nextpnr gives a 16x4 LUT RAM), which tracks nextpnr's
  TRELLIS_COMB count; ``FF``: TRELLIS_FF; DP16KD; MULT18X18D.
- xc7 ``LUT6``: LUT sites (LUT1..6, LUT RAM and shift registers by the sites they take); FF;
  BRAM18 (a RAMB36 counts 2); DSP48.

How each figure is built:

- Memories are placed the way Yosys' ``memory_libmap`` places them, by comparing its own costs
  (:func:`memory`): ROMs (weights, thresholds) become logic when that is cheaper than a block RAM
  (up to about 2 Kbit per block on ECP5, 8 Kbit on xc7: soft-logic ROM bits cost 1/16 and 1/64
  of a LUT there), RAMs go to LUT RAM or block RAM. This decides most of a layer's LUTs, so it is
  modelled rather than fitted.
- Logic is a sum of terms, each counting a structure of the module (adder-tree inputs,
  comparator bits, register bits muxed, counter widths) times a per-family cost per unit. The costs
  were fitted (least squares on relative error) against Yosys on every layer of six designs (the
  digits CNN at 10,000 cycles per frame, also with simulation-sized FIFOs, and at PE = SIMD = 1;
  the third-party TFC w2a2 at 1,000 and 10,000; cnv-w1a1 at 50,000) and 47 further module
  configurations (the op types, FIFO depths and foldings those designs lack), then rounded.
  ``python -m qnnflow.bench --only estimates`` reproduces the comparison (qnnflow/bench/estimates.py)
  and tests/flows/data/resource_baseline.json keeps a sample of it.
- Registers are counted from the RTL (every ``_reg`` and pipeline register), less the read
  registers a block RAM or DSP absorbs.

Residuals of that comparison: every design's total LUTs and FFs within 13 % on both families;
93 % of single layers within 20 % for LUTs, the rest up to 50 % where ABC maps a logic ROM or a
tiny converter much better or worse than its size suggests (see bench/results/estimates.png).
Block RAMs: Yosys packs some tall memories into fewer blocks than one shape tiles, so the count
may be a block or two high. These estimates steer folding
(:mod:`qnnflow.flows.compile.folding_search`); the implementation reports measured figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from qnnflow.flows.codegen.memfiles import fifo_chain_shape, search_bank_depth
from qnnflow.flows.compile.resources_memory import Memory, _clog2, memory
from qonnx.core.datatype import DataType

FAMILIES = ("ecp5", "xc7")
KEYS = {"ecp5": ("LUT4", "FF", "DP16KD", "MULT18X18D"), "xc7": ("LUT6", "FF", "BRAM18", "DSP48")}

def _bits(name: str) -> int:
    return int(DataType[name].bitwidth())


_COST = {
    "ecp5": {
        # mvau
        "mvau_base": 70,  # handshake, valid pipeline, output slice control
        "mvau_counter": 2.0,  # per bit of the SF, NF and weight-address counters
        "mvau_xmux": 1.4,  # per input bit: first fold from the stream, the others from the buffer
        "mvau_xnor": 3.7,  # per XNOR product: the product and its share of the popcount tree
        "mvau_tree": 0.6,  # per partial-product bit entering the ACC_W-wide carry-save adder tree
        "mvau_dsp_tree": 1.1,  # per accumulator bit of each DSP product summed in the fabric
        "mvau_split": 1.0,  # per bit of the registered partial sums (SIMD > 8) and their adder
        "mvau_cmp": 2.8,  # per threshold bit: comparator against the accumulator and the count
        "mvau_out": 2.5,  # per output bit: the output slice and the count adder
        "mvau_wrom": 1.4,  # weight ROM in logic, per plain-ROM LUT (address from the next-address logic)
        "mvau_wrom_deep": 0.08,  # ... plus per bit beyond 64 words (ABC merges the address logic in)
        # thresholding
        "thr_base": 21,
        "thr_rom": 2.4,  # per plain-ROM LUT of the threshold memory in logic, with its comparators
        "thr_out": 9.3,  # per output bit: count adder and output slice
        # threshold search (hw/threshold_search.sv), per lane; fitted on six configurations of the
        # module alone (1..4 lanes, 31..255 thresholds, 4..64 folds, 9..25 bits): LUTs within 3 %,
        # FFs within 6 %
        "search_cmp": 1.1,  # per compared bit of each bank: its carry chain (two bits a CCU2C)
        "search_rom": 0.9,  # per plain-ROM LUT of a stage's memory in logic (sorted columns map well)
        "search_mux": 1.0,  # per bank beyond a stage's first: choosing among their results
        "search_srl": 0.0,  # per value and fold bit of a stage's delay: flip-flops here, no LUTs
        "search_lane_ff": 0.0,  # (xc7 only, see there)
        # sliding window
        "swg_base": 18,
        "swg_addr": 37,  # per bit of the slot address: the row/column counters and address adders
        "swg_beat": 1.05,  # per beat bit: padding multiplexer and output slice
        # maxpool
        "pool_cmp": 6.0,  # per element bit: comparator, multiplexer, output slice
        "pool_counter": 19.6,  # per bit of the eight position counters
        # label select
        "label_elem": 2.8,  # per bit of (value, index) compared and multiplexed
        "label_index": 9.5,  # per index bit: base counter, last-beat compare, output slice
        # add / duplicate streams, width converter, fifo
        "add_base": 4,
        "add_pe": 7.5,
        "add_bit": 1.1,  # per sum bit: the adder and the output slice
        "slice_bit": 1.0,  # per bit of a skid buffer (register slice)
        "slice_base": 6,
        "dwc_base": 5.3,
        "dwc_count": 3.2,  # per bit of the beat counter
        "dwc_shift": 4.0,  # per bit of a narrowing converter's shift register that shifts
        "dwc_load": 1.5,  # per bit of its last slice (loaded only)
        "fifo_base": 9,
        "fifo_ptr": 8.7,  # per pointer bit: read/write pointers, two fill counters, full/empty
    },
    "xc7": {
        "mvau_base": 63,
        "mvau_counter": 0.6,
        "mvau_xmux": 2.25,
        "mvau_xnor": 1.75,
        "mvau_tree": 0.38,
        "mvau_dsp_tree": 0.2,
        "mvau_split": 0.0,  # the partial sums fold into the same LUT6 adder tree
        "mvau_cmp": 0.45,
        "mvau_acc": 0.25,
        "mvau_out": 0.0,
        "mvau_wrom": 3.0,
        "mvau_wrom_deep": 0.023,
        "thr_base": 14,
        "thr_rom": 1.14,
        "thr_out": 3.0,
        "search_cmp": 0.7,  # (the same six: LUT6 within 10 %, FFs within 30 %)
        "search_rom": 1.4,
        "search_mux": 1.0,
        # Yosys shifts a stage's delay of the value and fold, and a logic ROM's read with its two
        # registers, into SRL16Es (a LUT site per bit, no flip-flops); a block RAM's two registers stay
        "search_srl": 1.0,
        "search_lane_ff": 7.5,  # the flip-flops left per lane and stage (the bits found, the flag, ...)
        "swg_base": 13.5,
        "swg_addr": 17.2,
        "swg_beat": 1.9,
        "pool_cmp": 2.9,
        "pool_counter": 8.1,
        "label_elem": 1.55,
        "label_out_elem": 0.9,
        "label_index": 1.8,
        "label_base": 22,  # the output queue's LUT RAM, pointers and credit count
        "add_base": 7,
        "add_pe": 0,
        "add_bit": 1.8,
        "slice_bit": 1.0,
        "slice_base": 5,
        "dwc_base": 5.7,
        "dwc_count": 0.16,
        "dwc_shift": 2.14,
        "dwc_load": 0.2,
        "fifo_base": 7.7,
        "fifo_ptr": 3.0,
    },
}


@dataclass
class _Tally:
    luts: float = 0.0
    ffs: float = 0.0
    brams: int = 0
    dsps: int = 0

    def add(self, mem: Memory) -> Memory:
        self.luts += mem.luts
        self.ffs += mem.ffs
        self.brams += mem.brams
        return mem

    def merge(self, other: _Tally) -> None:
        self.luts += other.luts
        self.ffs += other.ffs
        self.brams += other.brams
        self.dsps += other.dsps


def threshold_search_tally(lanes: int, nt: int, nf: int, in_w: int, in_signed: bool, thr_w: int, family: str) -> _Tally:
    """``hw/threshold_search.sv`` of ``lanes`` values of ``in_w`` bits against ``nt`` thresholds of
    ``thr_w`` bits per channel, ``nf`` channel groups: per lane and stage k (clog2(nt + 1) of them)
    the NF * 2^k-word memory in banks (each placed by :func:`memory`), every bank's address
    registered (Yosys merges those copies with the fold and bits found registered beside them) and
    its read three times (a block RAM holds the first), its comparator with the result registered,
    the bank multiplexer; beside them the value and the fold (six registers a stage, four in the
    last), the bits found (k five times and k + 1 in stage k) and the tag (six). On xc7 most of
    those registers are shift registers."""
    c = _COST[family]
    stages = nt.bit_length()
    cmp_w = max(thr_w, in_w if in_signed else in_w + 1)
    t = _Tally()
    for k in range(stages):
        depth = nf << k
        bank = search_bank_depth(depth, thr_w)
        banks = -(-depth // bank)
        for b in range(banks):
            mem = memory(min(bank, depth - b * bank), thr_w, family, rom=True)
            t.luts += lanes * mem.luts * (c["search_rom"] if mem.kind == "logic" else 1)
            t.brams += lanes * mem.brams
            if not c["search_srl"]:
                t.ffs += lanes * (3 * thr_w + mem.ffs)
            elif mem.kind == "logic":
                t.luts += c["search_srl"] * lanes * thr_w
            else:
                t.ffs += lanes * 2 * thr_w
        t.luts += lanes * (c["search_cmp"] * cmp_w * banks + c["search_mux"] * (banks - 1))
        t.ffs += lanes * banks  # the comparisons registered
    delayed = lanes * in_w + _clog2(nf)  # value and fold bits
    if c["search_srl"]:
        t.luts += c["search_srl"] * delayed * stages
        t.ffs += c["search_lane_ff"] * lanes * stages
    else:
        t.ffs += delayed * (6 * stages - 2) + lanes * (3 * stages * (stages - 1) + stages) + 6 * stages
    return t


def _deeper_queue(width: int, depth: int, family: str) -> _Tally:
    """What an output queue (hw/credit_queue.sv, a LUT-RAM FIFO) of ``depth`` words costs beyond the
    16 the per-unit costs were fitted with: LUT RAM rows and their multiplexer, wider pointers and
    counts (five of them)."""
    more, base = memory(depth, width, family, rom=False), memory(16, width, family, rom=False)
    return _Tally(luts=more.luts - base.luts, ffs=5 * (_clog2(depth) - 4) + more.ffs - base.ffs)


def _skid_ffs(width: int) -> int:
    return 2 * width + 2  # output and skid registers with their valid bits


@dataclass(frozen=True)
class _Mac:
    """The structure of a MAC module (``hw/mvau.sv``, ``hw/vvau.sv``) from its HDL parameters: NF
    output folds of PE rows and SF input folds of SIMD products per row."""

    pe: int
    simd: int
    iw: int
    ww: int
    acc: int
    nt: int
    ow: int
    nf: int
    sf: int
    xnor: bool  # XNOR-popcount products
    use_mul: bool  # DSP products: neither operand bipolar, both wider than 4 bits
    ng: int  # registered partial sums of 8 products (the modules' GROUP), 0 for SIMD <= 8
    counters: int  # bits of the SF, NF and weight-address counters
    pps: int  # shift-and-add partial products per product: one per bit of the narrower operand (one if bipolar)
    search: bool = False  # the thresholds' count by binary search (THR_SEARCH, hw/threshold_search.sv)
    msum: bool = False  # masked sums (hw/mac_pipeline.sv MSUM): two trees, their sums combined in a stage
    wbanks: bool = False  # the weights read through banks in block RAM (hw/mvau.sv W_BANK_D > 0)
    thr_bram: bool = False  # the thresholds in block RAM, read through a second register (THR_BRAM)

    @classmethod
    def of(cls, p: Mapping[str, int], rows: str, cols: str) -> _Mac:
        """From the parameters ``p``, whose ``rows`` parameter counts the output channels and
        ``cols`` the products per channel."""
        from qnnflow.flows.compile.latency import masked_sums  # here: latency imports the backends

        pe, simd, iw, ww, acc, nt, ow = (int(p[k]) for k in ("PE", "SIMD", "IN_W", "W_W", "ACC_W", "NUM_T", "OUT_W"))
        nf, sf = int(p[rows]) // pe, int(p[cols]) // simd
        return cls(
            pe, simd, iw, ww, acc, nt, ow, nf, sf,
            xnor=bool(p["IN_BIPOLAR"]) and bool(p["W_BIPOLAR"]),
            use_mul=not p["IN_BIPOLAR"] and not p["W_BIPOLAR"] and iw > 4 and ww > 4,
            ng=math.ceil(simd / 8) if simd > 8 else 0,
            counters=_clog2(nf) + _clog2(sf) + _clog2(nf * sf),
            pps=1 if (p["IN_BIPOLAR"] or p["W_BIPOLAR"]) else min(iw, ww),
            search=bool(int(p.get("THR_SEARCH", 0))) and nt > 0,
            msum=masked_sums(p, per_lane_x=rows != "MH"),
            wbanks=int(p.get("W_BANK_D", 0)) > 0,
            thr_bram=bool(int(p.get("THR_BRAM", 0))),
        )  # fmt: skip


def _mac(m: _Mac, c: Mapping[str, float], family: str, *, tree: float, own_ffs: int, thr_ffs: int) -> _Tally:
    """What ``hw/mvau.sv`` and ``hw/vvau.sv`` share, at the per-unit costs ``c``: control, products
    and their adder tree (``tree``: the LUTs of the shift-and-add tree, used when the products are
    neither XNOR nor DSP), accumulators, threshold comparators, the output slice, and the weight
    and threshold memories. ``own_ffs``: the registers of the module's own input side;
    ``thr_ffs``: those that come with thresholds."""
    t = _Tally()
    t.luts = c["mvau_base"] + c["mvau_counter"] * m.counters + c["mvau_split"] * m.pe * m.ng * m.acc
    t.luts += c.get("mvau_acc", 0) * m.pe * m.acc + c["mvau_out"] * m.pe * m.ow
    t.luts += 0 if m.search else c["mvau_cmp"] * m.pe * m.nt * m.acc
    if m.xnor:
        t.luts += c["mvau_xnor"] * m.pe * m.simd
    elif m.use_mul:
        t.dsps = m.pe * m.simd
        t.luts += c["mvau_dsp_tree"] * m.pe * m.simd * m.acc
    else:
        t.luts += tree
    # registers: control and valid pipeline, the weights of a beat (stage 0), the weight read
    # register, partial sums, dot products, accumulators, output slice
    t.ffs = 7 + m.counters + own_ffs + 2 * m.pe * m.simd * m.ww + m.pe * m.ng * m.acc + (3 if m.ng else 0)
    t.ffs += 2 * m.pe * m.acc + _skid_ffs(m.pe * m.ow)
    if m.nf * m.sf > 1:
        # weights read through banks (hw/mvau.sv W_BANK_D) are in block RAM: the RTL asks for it
        w = t.add(memory(m.nf * m.sf, m.pe * m.simd * m.ww, family, rom=True, block=m.wbanks))
        if w.kind == "logic":
            deep = m.pe * m.simd * m.ww * m.nf * m.sf if m.nf * m.sf > 64 else 0
            t.luts += (c["mvau_wrom"] - 1) * w.luts + c["mvau_wrom_deep"] * deep
    else:
        t.ffs -= m.pe * m.simd * m.ww  # one word: constants
    if m.search:  # the accumulator's fold registered, then the search
        t.ffs += _clog2(m.nf)
        t.merge(threshold_search_tally(m.pe, m.nt, m.nf, m.acc, True, m.acc, family))
        # the output queue's credits cover the search (hw/mac_pipeline.sv QDEPTH = LATENCY + 4)
        from qnnflow.flows.compile.latency import mac_pipeline_latency  # here: latency imports the backends

        terms = m.pps if not m.use_mul and not m.xnor and m.pps > 2 else 1
        qdepth = mac_pipeline_latency(m.simd, m.nt, m.use_mul, terms, search=True, msum=m.msum) + 4
        t.merge(_deeper_queue(m.pe * m.ow, qdepth, family))
    elif m.nt:
        t.ffs += thr_ffs + m.pe * m.nt * m.acc
        if m.nf > 1:
            thr = t.add(memory(m.nf, m.pe * m.nt * m.acc, family, rom=True, block=m.thr_bram))
            # in block RAM the read's two registers are the block's own; the compared accumulator
            # waits a cycle more beside the fabric register
            t.ffs += m.pe * m.acc if m.thr_bram else 0
            # Yosys drops the constant and duplicate columns of the read's registers; from PE = 4 on
            # each lane keeps its own copy of the second (hw/mac_pipeline.sv THR_COPIES)
            if thr.kind == "logic" and not _thr_copies(m.pe, m.nt):
                t.ffs -= 0.2 * m.pe * m.nt * m.acc
        else:
            t.ffs -= m.pe * m.nt * m.acc
    return t


def _thr_copies(pe: int, nt: int) -> bool:
    """hw/mac_pipeline.sv THR_COPIES (of a layer with thresholds in a ROM of several folds, not
    searched): 1 to 3 thresholds, PE >= 4."""
    return nt <= 3 and pe >= 4


def _tag_copies(pe: int) -> int:
    """Registers of hw/mac_pipeline.sv TAG_COPIES: valid and first, per lane from PE = 4 on."""
    return 2 * pe if pe >= 4 else 0


def _mvau(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    m = _Mac.of(p, "MH", "MW")
    # shift-and-add: each partial product enters the adder tree at the accumulator's width (a
    # 2-bit weight's masked sums: two terms per product, as its two partial products)
    tree = c["mvau_tree"] * m.pe * m.simd * m.pps * m.acc
    # own registers: the input slice (hw/mac_pipeline.sv X_COPIES: a copy per lane from PE = 4 on,
    # without multipliers); with thresholds, the threshold read control
    copies = m.pe if not m.use_mul and m.pe >= 4 else 1
    own = copies * m.simd * m.iw + _tag_copies(m.pe)
    if m.msum:  # the sums combined in a registered stage; bipolar weights: the inputs' own tree
        tree += c["mvau_tree"] * m.simd * m.acc if p["W_BIPOLAR"] else 0
        tree += c.get("mvau_acc", 0) * m.pe * m.acc
        own += m.pe * m.acc
    t = _mac(m, c, family, tree=tree, own_ffs=own, thr_ffs=(3 if m.ng else 2) * _clog2(m.nf))
    bank_d = int(p.get("W_BANK_D", 0))
    if m.nf > 1:
        # the input vector buffer: written on the first fold, read back on the others; with banked
        # weights read through two registers (the read's own in block RAM) and a bypass flag
        xbuf = t.add(memory(m.sf, m.simd * m.iw, family, rom=False))
        t.luts += c["mvau_xmux"] * m.simd * m.iw
        if bank_d:
            t.ffs += (1 if xbuf.kind == "bram" else 2) * m.simd * m.iw + 2
        elif m.sf > 1:  # the write a cycle after the issue: its enable and address registered
            t.ffs += _clog2(m.sf) + 1
    if bank_d:  # weights through banks: each bank's second read register, the selection, the slice waiting
        from qnnflow.flows.compile.latency import bank_delay  # here: latency imports the backends

        banks, word = -(-m.nf * m.sf // bank_d), m.pe * m.simd * m.ww
        t.ffs += banks * word + m.simd * m.iw + _clog2(m.nf) + 3 + 2 * _clog2(banks)
        t.luts += c["slice_bit"] * word * (banks - 1)
        if m.nf > 1:  # the bypass registered (X_BYP_REG), the read address a cycle later, the slice waiting
            t.ffs += m.simd * m.iw + _clog2(m.nf * m.sf) + _clog2(m.nf) + 3
        extra = bank_delay(p) - 1 - int(m.nf > 1)  # registered 4:1 levels of the selection (more than four banks)
        groups = [-(-banks // 4 ** k) for k in range(1, extra + 1)]
        t.ffs += sum(groups) * word + extra * (m.simd * m.iw + _clog2(m.nf) + 3)
    return t


def _thresholding(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    pe, nt, tw, ow = (int(p[k]) for k in ("PE", "NUM_T", "THR_W", "OUT_W"))
    cf = int(p["CH"]) // pe
    t = _Tally(luts=c["thr_base"] + c["thr_out"] * pe * ow, ffs=_clog2(cf) + _skid_ffs(pe * ow))
    if int(p.get("THR_SEARCH", 0)):  # the beat, its fold and valid registered, then the search
        iw = int(p["IN_W"])
        # the output queue's credits cover the longer pipeline (hw/thresholding.sv QDEPTH): its
        # pointers and counts a bit or two wider than the 16 words' of the parallel compare
        qdepth = -(-(1 + 6 * nt.bit_length() + 6) // 16) * 16
        t.ffs += pe * iw + _clog2(cf) + 1
        t.merge(_deeper_queue(pe * ow, qdepth, family))
        t.merge(threshold_search_tally(pe, nt, cf, iw, bool(int(p["IN_SIGNED"])), tw, family))
    elif cf > 1:
        mem = memory(cf, pe * nt * tw, family, rom=True)
        t.brams += mem.brams
        t.luts += mem.luts + (c["thr_rom"] - 1) * mem.luts if mem.kind == "logic" else mem.luts
        # the threshold register; Yosys drops duplicate and constant columns of a shallow table
        t.ffs += 0 if mem.kind == "bram" else pe * nt * tw * (0.5 if cf <= 16 else 1)
    return t


def _sliding_window(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    simd, ew, k = int(p["SIMD"]), int(p["ELEM_W"]), int(p["K"])
    h, w, stride, pad = int(p["IFM_H"]), int(p["IFM_W"]), int(p.get("STRIDE", 1)), int(p.get("PAD", 0))
    kh = int(p.get("K_H", k))  # rows of the window: the row slots kept
    cf = int(p["CH"]) // simd
    sh = int(p.get("STRIDE_H", stride))
    kw, sw, pw_ = int(p.get("K_W", k)), int(p.get("STRIDE_W", stride)), int(p.get("PAD_W", pad))
    ow = (w + 2 * pw_ - kw) // sw + 1
    # 2 K_H row slots of IFM_W * CF beats, one more when K_H == STRIDE_H with `go` a register
    # (hw/sliding_window.sv NR)
    nr = 2 * kh + (1 if kh == sh and ow * kh * kw * cf > 2 else 0)
    depth = nr * w * cf
    beat = simd * ew
    aw = _clog2(depth) + 1
    pw = _clog2(w * cf + h + 2 * kh + (k + stride + pad) * cf + 2) + 2
    t = _Tally(luts=c["swg_base"] + c["swg_addr"] * aw + c["swg_beat"] * beat)
    # slot addresses (3 + write, + the next row's, prepared when a window row has two beats or
    # more), 11 position counters and their 10 flags, read data, padding flag, output slice
    t.ffs = (5 if kw * cf > 1 else 4) * aw + 11 * pw + 10 + beat + _skid_ffs(beat)
    t.add(memory(depth, beat, family, rom=False))
    return t


def _maxpool(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    pe, ew, k = int(p["PE"]), int(p["ELEM_W"]), int(p["K"])
    kh, kw = int(p.get("K_H", k)), int(p.get("K_W", k))
    h, w = int(p["IFM_H"]), int(p["IFM_W"])
    cf, ow = int(p["CH"]) // pe, w // kw
    cnt = _clog2(h + w + cf + kh + kw + ow * cf + 2) + 1  # hw/maxpool.sv CNT_W
    t = _Tally(luts=c["pool_cmp"] * pe * ew + c["pool_counter"] * cnt, ffs=8 * cnt + _skid_ffs(pe * ew))
    # running maxima of a row of windows: read and written at one address, read asynchronously
    t.add(memory(ow * cf, pe * ew, family, rom=False, sync_read=False, single_port=True))
    return t


def _label_select(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    pe, ew, ow = int(p["PE"]), int(p["ELEM_W"]), int(p["OUT_W"])
    cf = int(p["NUM"]) // pe
    mapped = bool(p.get("HAS_MUL") or p.get("HAS_OFFSET") or p.get("SHIFT"))
    cw = int(p["VAL_W"]) if mapped else ew  # the width compared
    # compares and selects: the tree's PE - 1; the item's pair, the best so far's compare, its
    # update and the result's select (about three more)
    luts = c["label_elem"] * (pe + 2) * (ew + ow) + c["label_index"] * ow
    if family == "xc7":  # LUT6 compare more bits per LUT than they multiplex
        luts = c.get("label_base", 0) + c["label_elem"] * (pe + 2) * ew + c["label_out_elem"] * (pe + 2) * ow
        luts += c["label_index"] * ow
    # registers of the pipeline: the fold counter and last flag, the beat, each level k of the
    # compare tree (its winners' values and k index bits, a valid), the items and the best so far
    # (base and place; the held half, both halves, the item, the compared item, the best: six
    # (value, index) pairs; the result; flags), the output queue (about 19 + OUT_W: read register,
    # pointers, credits)
    tree = 0
    for k in range(1, (pe - 1).bit_length() + 1):
        tree += -(-pe // (1 << k)) * (cw + k) + 1
    items = 6 * cw + 7 * ow + 12 + _clog2(cf)
    ffs = _clog2(cf) + 2 + pe * ew + tree + items + 19 + ow
    t = _Tally(luts=luts, ffs=ffs)
    if mapped:
        _label_map(p, family, t)
    return t


def _label_map(p: Mapping[str, int], family: str, t: _Tally) -> None:
    """The per-class map of hw/label_select.sv: constant ROMs read with the beat and registered
    twice (the beat once more beside them), a multiplier (DSP blocks when both operands are wider
    than 4 bits, else shift-and-add) with its product registered, the offset adder registered."""
    pe, ew, vw = int(p["PE"]), int(p["ELEM_W"]), int(p["VAL_W"])
    cf = int(p["NUM"]) // pe
    per_bit = 1.0 if family == "ecp5" else 0.5
    # compared bits beyond the input's (fitted on the two lint-rtl variants: ~1 LUT4 per bit)
    t.luts += per_bit * pe * (vw - ew)
    if p.get("HAS_MUL") or p.get("HAS_OFFSET"):
        t.ffs += pe * ew + 1  # the beat registered again beside the constants
    for flag, width in (("HAS_MUL", "MUL_W"), ("HAS_OFFSET", "OFF_W")):
        if p.get(flag):
            w = pe * int(p[width])
            t.ffs += 2 * w  # the read and its second register
            if cf > 1:
                t.add(memory(cf, w, family, rom=True))
    if p.get("HAS_MUL"):  # the product registered, the offsets beside it
        t.ffs += pe * vw + 1 + (pe * int(p["OFF_W"]) if p.get("HAS_OFFSET") else 0)
    if p.get("HAS_OFFSET"):  # the sum registered
        t.ffs += pe * vw + 1
    t.luts += 0.5 * per_bit * pe * vw * bool(p.get("HAS_OFFSET"))
    if p.get("HAS_MUL"):
        mw = int(p["MUL_W"])
        if ew + 1 > 4 and mw > 4:
            t.dsps += pe * math.ceil((ew + 1) / 18) * math.ceil(mw / 18)
            t.luts += per_bit * pe * vw * (t.dsps // pe - 1)  # the partial products' adders
        else:
            t.luts += per_bit * pe * vw * min(ew + 1, mw)


def _add_streams(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    pe, ow = int(p["PE"]), int(p["OUT_W"])
    return _Tally(luts=c["add_base"] + c["add_pe"] * pe + c["add_bit"] * pe * ow, ffs=_skid_ffs(pe * ow))


def _duplicate_streams(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    n, w = int(p["NUM_OUT"]), int(p["DATA_W"])
    return _Tally(luts=n * (c["slice_bit"] * w + c["slice_base"]), ffs=n * _skid_ffs(w))


def _width_converter(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    i, o = int(p["IN_W"]), int(p["OUT_W"])
    if i == o:
        return _Tally(luts=c["slice_bit"] * i + c["slice_base"], ffs=_skid_ffs(i))
    r = max(i, o) // min(i, o)
    cnt = _clog2(r)
    luts = c["dwc_base"] + c["dwc_count"] * cnt
    if o > i:  # collect R-1 beats, then register the word
        return _Tally(luts=luts, ffs=o + (o - i) + cnt + 1)
    # narrowing: the current word shifts by OUT_W per beat (R-1 of R slices move), the next waits
    luts += c["dwc_shift"] * i * (1 - 1 / r) + c["dwc_load"] * i / r
    return _Tally(luts=luts, ffs=2 * i + cnt + 2)


def _fifo(p: Mapping[str, int], family: str) -> _Tally:
    c = _COST[family]
    w, d = int(p["DATA_W"]), max(2, int(p["DEPTH"]))
    ptr = _clog2(d)
    t = _Tally(luts=c["fifo_base"] + c["fifo_ptr"] * ptr, ffs=2 * ptr + 2 * _clog2(d + 1) + w + 1)
    t.add(memory(d, w, family, rom=False))
    if int(p.get("OUT_SLICE", 0)):  # hw/skid_buffer.sv
        t.luts += c["slice_bit"] * w + c["slice_base"]
        t.ffs += _skid_ffs(w)
    return t


def _fifo_chain(p: Mapping[str, int], family: str) -> _Tally:
    """hw/fifo_chain.sv: NSEG FIFOs of ceil(DEPTH / NSEG) words, the slice after the last."""
    nseg, sdepth = fifo_chain_shape(max(2, int(p["DEPTH"])), int(p.get("SEG_D", 0)))
    one = {**p, "DEPTH": sdepth, "OUT_SLICE": 0}
    t = _Tally()
    for _ in range(nseg):
        t.merge(_fifo(one, family))
    if int(p.get("OUT_SLICE", 0)):  # hw/skid_buffer.sv after the last
        c, w = _COST[family], int(p["DATA_W"])
        t.luts += c["slice_bit"] * w + c["slice_base"]
        t.ffs += _skid_ffs(w)
    return t


def _vvau(p: Mapping[str, int], family: str) -> _Tally:
    from qnnflow.flows.compile.resources_dw import vvau_tally  # here, not at the top: it imports this module

    return vvau_tally(p, family)


def _tv_smooth(p: Mapping[str, int], family: str) -> _Tally:
    from qnnflow.flows.compile.resources_tv import tv_tally  # here, not at the top: it imports this module

    return tv_tally(p, family)


_MODULES = {
    "mvau": _mvau,
    "thresholding": _thresholding,
    "sliding_window": _sliding_window,
    "maxpool": _maxpool,
    "label_select": _label_select,
    "add_streams": _add_streams,
    "duplicate_streams": _duplicate_streams,
    "width_converter": _width_converter,
    "fifo": _fifo,
    "fifo_chain": _fifo_chain,
    "vvau": _vvau,
    "tv_smooth": _tv_smooth,
}


def module_estimate(module: str, params: Mapping[str, object], family: str) -> dict[str, int]:
    """Resources of ``hw/<module>.sv`` at ``params`` (its HDL parameters) on ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    model = _MODULES.get(module)
    if model is None:
        raise ValueError(f"no resource model for module {module!r}; known: {', '.join(_MODULES)}")
    t = model({k: v for k, v in params.items() if not k.endswith("_FILE")}, family)
    k = KEYS[family]
    return {k[0]: math.ceil(t.luts), k[1]: math.ceil(max(0, t.ffs)), k[2]: int(t.brams), k[3]: int(t.dsps)}


# -- layers -> module parameters -------------------------------------------------------------------


def layer_params(layer) -> tuple[str, dict[str, int | str]]:
    """The ``hw/`` module and HDL parameters of ``layer``: its RTL backend's
    (:func:`qnnflow.flows.codegen.backends.backend`, the one table of them) as far as they follow from the
    attributes; a threshold count is the most the output type can count."""
    from qnnflow.flows.codegen.backends import backend
    from qnnflow.flows.codegen.design import sanitize

    be = backend(layer, None, sanitize(layer.node.name))  # the memory file names codegen gives
    return be.module, be.params


def estimate(layer, family: str) -> dict[str, int]:
    """Resources of one layer (flows/ir/layers.py) on ``family`` ("ecp5" or "xc7")."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    module, params = layer_params(layer)
    return module_estimate(module, params, family)
