"""The parameter sets the module benches run with, and the data each needs before simulation.

One :class:`Case` per (module, parameter set), with a readable id such as ``mvau/pe2-simd4-w2a2``.
Only valid combinations are listed. ``slow`` cases are larger sweeps kept out of ``make test``.
Memory contents (weights, thresholds) are drawn from the case's seed here, written as
``$readmemh`` files with :mod:`qnnflow.flows.codegen.memfiles`, and passed to the bench in its JSON
settings too; the bench draws its own random inputs from the same seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen import memfiles
from qnnflow.flows.ir import kernels, kernels_dw
from qnnflow.flows.ir.kernels_tv import TVParams
from qnnflow.sim.runner import BenchRun, run_bench


@dataclass(frozen=True)
class Case:
    module: str
    id: str
    params: dict
    config: dict = field(default_factory=dict)
    # seed -> (extra bench settings, files for the run folder)
    prepare: Callable[[int], tuple[dict, dict[str, str]]] | None = None
    slow: bool = False

    @property
    def full_id(self) -> str:
        return f"{self.module}/{self.id}"

    @property
    def seed(self) -> int:
        """A fixed seed per case, so a failure reproduces; override with ``run(seed=...)``."""
        return zlib.crc32(self.full_id.encode()) & 0x7FFFFFFF

    def run(
        self, *, seed: int | None = None, waves: bool = False, cache_dir: Path | None = None, check: bool = True
    ) -> BenchRun:
        seed = self.seed if seed is None else seed
        extra, files = self.prepare(seed) if self.prepare else ({}, {})
        return run_bench(
            self.module,
            self.params,
            seed=seed,
            config={**self.config, **extra},
            files=files,
            cache_dir=cache_dir,
            waves=waves,
            check=check,
        )


# ------------------------------------------------------------------------------------------------
# MVAU
# ------------------------------------------------------------------------------------------------
def _dtype_range(bits: int, signed: bool, bipolar: bool, ternary: bool = False) -> tuple[int, int]:
    if ternary:
        return -1, 1
    return kernels.value_range(bits, signed, bipolar=bipolar)


def _random_values(rng, lo: int, hi: int, shape, bipolar: bool = False) -> np.ndarray:
    if bipolar:
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(lo, hi + 1, size=shape)


def _random_thresholds(rng, channels: int, num_t: int, lo: int, hi: int) -> np.ndarray:
    """Ascending thresholds per channel, mostly inside [lo, hi + 1] so every count occurs."""
    span = max(hi - lo, 1)
    thr = rng.integers(lo - span // 8, hi + 2 + span // 8, size=(channels, num_t))
    return np.sort(kernels.clip_thresholds(thr, lo, hi), axis=1)


# ------------------------------------------------------------------------------------------------
# corner vectors: the extremes that random stimulus almost never reaches
# ------------------------------------------------------------------------------------------------
def corner_inputs(n: int, x_range: tuple[int, int]) -> np.ndarray:
    """The two corner input vectors of ``n`` elements, all-max then all-min (for bipolar or signed
    inputs both extremes; for unsigned ones all-min is all zeros). The benches put them first."""
    lo, hi = x_range
    return np.array([[hi] * n, [lo] * n], dtype=np.int64)


def _corner_weights(w: np.ndarray, w_range: tuple[int, int]) -> np.ndarray:
    """``w`` with row 0 all-max and row 1 all-min weights: with :func:`corner_inputs` the products
    then reach every corner of the value ranges, so both accumulator extremes occur."""
    w = w.copy()
    w[0], w[1 % len(w)] = w_range[1], w_range[0]
    return w


def _corner_thresholds(thr: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Thresholds ``thr`` (C, T) with the extremes ``reach`` (C, 2: lowest, highest value of each
    channel under the corner vectors) built into channels 0 and 1: the last threshold of each is
    the channel's highest value (it fires only there) and, with two or more thresholds, the first
    is its lowest value + 1 (it fires everywhere but there). An accumulator or comparison that
    wraps or is off by one at an extreme then changes the output."""
    thr = np.sort(thr, axis=1)
    for c in range(min(2, len(thr))):
        lo, hi = int(reach[c, 0]), int(reach[c, 1])
        first = min(lo + 1, hi) if thr.shape[1] > 1 else lo
        row = np.sort(np.clip(thr[c], first, hi))  # the others in between, still ascending
        row[0], row[-1] = first, hi
        thr[c] = row
    return thr


@dataclass(frozen=True)
class _MacTypes:
    """What an MVAU and a VVAU case share: the element types, the accumulator (its width derived
    from ``terms`` products, or ``acc_w`` to narrow it), and the threshold stage."""

    terms: int
    in_w: int
    in_signed: bool
    in_bipolar: bool
    w_w: int
    w_signed: bool
    w_bipolar: bool
    ternary: bool
    num_t: int
    out_offset: int
    acc_w: int | None
    search: bool = False  # the count by binary search (hw/threshold_search.sv)

    @property
    def x_range(self) -> tuple[int, int]:
        return _dtype_range(self.in_w, self.in_signed, self.in_bipolar)

    @property
    def w_range(self) -> tuple[int, int]:
        return _dtype_range(self.w_w, self.w_signed, self.w_bipolar, self.ternary)

    @property
    def xnor(self) -> bool:
        return self.in_bipolar and self.w_bipolar

    @property
    def derived_acc_w(self) -> int:
        return kernels.accumulator_width(self.terms, self.x_range, self.w_range, xnor=self.xnor)

    @property
    def params(self) -> dict:
        """The HDL parameters both modules name alike."""
        acc_w = self.derived_acc_w if self.acc_w is None else self.acc_w
        if self.num_t:
            out_lo, out_hi = self.out_offset, self.out_offset + self.num_t
            out_w = kernels.signed_width(out_lo, out_hi) if out_lo < 0 else max(1, out_hi.bit_length())
        else:
            out_w = acc_w
        return dict(
            IN_W=self.in_w, IN_SIGNED=int(self.in_signed), IN_BIPOLAR=int(self.in_bipolar),
            W_W=self.w_w, W_SIGNED=int(self.w_signed), W_BIPOLAR=int(self.w_bipolar),
            ACC_W=acc_w, NUM_T=self.num_t, OUT_W=out_w, OUT_OFFSET=self.out_offset,
            WEIGHT_FILE="weights.mem", THRESH_FILE="thresholds.mem" if self.num_t and not self.search else "",
            **_search_params(self.search),
        )  # fmt: skip

    def weights(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """Random weights with the corner rows of :func:`_corner_weights`."""
        return _corner_weights(_random_values(rng, *self.w_range, shape, bipolar=self.w_bipolar), self.w_range)

    def files(self, rng, words: list[int], word_w: int, pe: int, corner_acc, acc_range) -> tuple[dict, dict]:
        """The weight memory file, and with thresholds their file: random, with the extremes the
        corner inputs reach (``corner_acc``, inputs x rows) built in, clipped to a narrowed ACC_W."""
        files = {"weights.mem": _memh_text(words, word_w)}
        extra = {"x_range": list(self.x_range), "w_range": list(self.w_range)}
        if self.num_t:
            acc_w = self.params["ACC_W"]
            reach = np.stack([corner_acc.min(0), corner_acc.max(0)], 1)
            thr = _corner_thresholds(_random_thresholds(rng, corner_acc.shape[1], self.num_t, *acc_range), reach)
            if acc_w != self.derived_acc_w:
                thr = np.clip(thr, *kernels.value_range(acc_w, True))
            files.update(threshold_files(thr, pe, acc_w, self.search))
            extra["thresholds"] = thr.tolist()
        return extra, files


def mvau_case(
    name: str,
    *,
    mw: int,
    mh: int,
    pe: int,
    simd: int,
    in_w: int,
    in_signed: bool = False,
    in_bipolar: bool = False,
    w_w: int,
    w_signed: bool = True,
    w_bipolar: bool = False,
    ternary: bool = False,
    num_t: int = 0,
    out_offset: int = 0,
    vectors: int = 12,
    acc_w: int | None = None,
    slow: bool = False,
    search: bool = False,
    w_bank_d: int = 0,
    thr_bram: bool = False,
) -> Case:
    """An MVAU case: random weights with a corner row of all-max and one of all-min weights, random
    thresholds with the corner rows' extremes among them (see :func:`corner_inputs`).
    ``w_bank_d``: the weights read through banks of that many words (W_BANK_D, one file per bank).

    ``acc_w`` overrides the derived accumulator width (a test narrows it to see the bench fail);
    the thresholds are then clipped to what ``acc_w`` bits hold, the reference stays exact.
    ``search``: the count by binary search (THR_SEARCH, hw/threshold_search.sv's memory files).
    ``thr_bram``: the thresholds in block RAM, read through a second register (THR_BRAM)."""
    t = _MacTypes(mw, in_w, in_signed, in_bipolar, w_w, w_signed, w_bipolar, ternary, num_t, out_offset, acc_w, search)
    acc_range = kernels.accumulator_range(mw, t.x_range, t.w_range, xnor=t.xnor)
    params = dict(MW=mw, MH=mh, PE=pe, SIMD=simd, **t.params, **_thr_bram_params(thr_bram))
    if w_bank_d:
        params.update(WEIGHT_FILE="weights_b%0d.mem", W_BANK_D=w_bank_d)

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        rng = np.random.default_rng(seed + 1)
        w = t.weights(rng, (mh, mw))
        words = memfiles.mvau_weight_words(w, pe, simd, w_w, signed=w_signed, bipolar=w_bipolar)
        acc = kernels.mvau(corner_inputs(mw, t.x_range), w, x_bipolar=in_bipolar, w_bipolar=w_bipolar)
        extra, files = t.files(rng, words, pe * simd * w_w, pe, acc, acc_range)
        if w_bank_d:
            del files["weights.mem"]
            banks = memfiles.weight_bank_files(params["WEIGHT_FILE"], words, w_bank_d)
            files.update({name: _memh_text(b, pe * simd * w_w) for name, b in banks.items()})
        return {"weights": w.tolist(), "vectors": vectors, **extra}, files

    return Case("mvau", name, params, prepare=prepare, slow=slow)


def vvau_case(
    name: str,
    *,
    ch: int,
    kk: int,
    pe: int,
    simd: int,
    in_w: int,
    in_signed: bool = False,
    in_bipolar: bool = False,
    w_w: int,
    w_signed: bool = True,
    w_bipolar: bool = False,
    ternary: bool = False,
    num_t: int = 0,
    out_offset: int = 0,
    windows: int = 12,
    acc_w: int | None = None,
    slow: bool = False,
    search: bool = False,
    thr_bram: bool = False,
) -> Case:
    """A depthwise (VVAU) case: CH channels of KK window positions each, random weights (C, KK)
    with channel 0 all-max and channel 1 all-min, random thresholds with those channels' extremes
    among them; the bench puts the all-max and all-min windows first (:func:`corner_inputs`), so
    both accumulator extremes occur. ``acc_w`` overrides the derived accumulator width; ``search``:
    the count by binary search (THR_SEARCH); ``thr_bram``: the thresholds in block RAM (THR_BRAM)."""
    t = _MacTypes(kk, in_w, in_signed, in_bipolar, w_w, w_signed, w_bipolar, ternary, num_t, out_offset, acc_w, search)
    acc_range = kernels_dw.vvau_accumulator_range(kk, t.x_range, t.w_range, xnor=t.xnor)
    params = dict(CH=ch, KK=kk, PE=pe, SIMD=simd, **t.params, **_thr_bram_params(thr_bram))

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        rng = np.random.default_rng(seed + 1)
        w = t.weights(rng, (ch, kk))
        words = memfiles.vvau_weight_words(w, pe, simd, w_w, signed=w_signed, bipolar=w_bipolar)
        acc = kernels_dw.vvau(corner_inputs(kk * ch, t.x_range), w, x_bipolar=in_bipolar, w_bipolar=w_bipolar)
        extra, files = t.files(rng, words, pe * simd * w_w, pe, acc, acc_range)
        return {"weights": w.tolist(), "windows": windows, **extra}, files

    return Case("vvau", name, params, prepare=prepare, slow=slow)


def _memh_text(words: list[int], width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


SEARCH_PREFIX = "thresholds"  # the search's memory files: thresholds_s<k>_l<lane>.mem


def _thr_bram_params(thr_bram: bool) -> dict:
    return {"THR_BRAM": 1} if thr_bram else {}


def _search_params(search: bool) -> dict:
    return {"THR_SEARCH": 1, "THRESH_PREFIX": SEARCH_PREFIX} if search else {}


def threshold_files(thr: np.ndarray, pe: int, width: int, search: bool) -> dict[str, str]:
    """The threshold memory files of a case: ``thresholds.mem`` (memfiles.threshold_words), or with
    ``search`` hw/threshold_search.sv's, one per stage and lane (memfiles.threshold_search_words)."""
    if not search:
        return {"thresholds.mem": _memh_text(memfiles.threshold_words(thr, pe, width), pe * thr.shape[1] * width)}
    memories = memfiles.threshold_search_words(thr, pe, width)
    files = memfiles.threshold_search_files(SEARCH_PREFIX, memories, width)
    return {name: _memh_text(words, width) for name, words in files.items()}


# ------------------------------------------------------------------------------------------------
# thresholding
# ------------------------------------------------------------------------------------------------
def thresholding_case(
    name: str,
    *,
    ch: int,
    pe: int,
    in_w: int,
    in_signed: bool,
    num_t: int,
    out_offset: int = 0,
    frames: int = 24,
    in_bipolar: bool = False,
    search: bool = False,
    slow: bool = False,
    at_thresholds: int = 0,
    byte_edges: bool = False,
) -> Case:
    """A thresholding case: random ascending thresholds, channels 0 and 1 with the input's extremes
    among them; the bench puts all-max and all-min pixels first (:func:`corner_inputs`). A bipolar
    input (``in_bipolar``, one bit, 0 meaning -1) has thresholds in -1..2 against the values
    -1 / +1: a threshold of 0 fires on +1 only, where a comparison with the code would fire on both.
    ``search``: the count by binary search (THR_SEARCH, hw/threshold_search.sv's memory files).
    ``at_thresholds``: that many more pixels after the corners whose every channel's value is one of
    its thresholds, and as many one below (the bench draws which), where a comparison that is off by
    one or a search that takes the wrong half changes the count. ``byte_edges``: thresholds on the
    byte edges of their values (low byte 0x00, 0x7f, 0x80 or 0xff), where a compare split into
    halves (hw/threshold_count.sv, over 12 bits) that got a lower half's sign or carry wrong fails
    at a threshold or one below."""
    lo, hi = kernels.value_range(in_w, in_signed, bipolar=in_bipolar)
    thr_w = kernels.signed_width(lo, hi + 1)  # clipped thresholds lie in [lo, hi + 1]
    out_lo, out_hi = out_offset, out_offset + num_t
    out_w = kernels.signed_width(out_lo, out_hi) if out_lo < 0 else max(1, out_hi.bit_length())
    params = dict(
        CH=ch,
        PE=pe,
        IN_W=in_w,
        IN_SIGNED=int(in_signed),
        IN_BIPOLAR=int(in_bipolar),
        NUM_T=num_t,
        THR_W=thr_w,
        OUT_W=out_w,
        OUT_OFFSET=out_offset,
        THRESH_FILE="" if search else "thresholds.mem",
        **_search_params(search),
    )

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        rng = np.random.default_rng(seed + 1)
        thr = _random_thresholds(rng, ch, num_t, lo, hi)
        if byte_edges:
            edges = (thr // 256) * 256 + rng.choice(np.array([0x00, 0x7F, 0x80, 0xFF]), size=thr.shape)
            thr = np.sort(kernels.clip_thresholds(edges, lo, hi), axis=1)
        thr = _corner_thresholds(thr, np.array([[lo, hi]] * ch))
        extra = {"thresholds": thr.tolist(), "frames": frames, "at_thresholds": at_thresholds}
        return extra, threshold_files(thr, pe, thr_w, search)

    return Case("thresholding", name, params, prepare=prepare, slow=slow)


# ------------------------------------------------------------------------------------------------
# TV smoothing
# ------------------------------------------------------------------------------------------------
def tv_smooth_case(
    name: str,
    *,
    h: int,
    w: int,
    ch: int,
    pe: int,
    bits: int,
    gamma: float,
    signed: bool = False,
    frac_bits: int = 6,
    gamma_frac_bits: int = 4,
    frames: int = 3,
) -> Case:
    """A TV smoothing case: codes of ``bits`` bits over their whole range (unsigned 0..2^bits-1 or
    signed), the table (``memfiles.tv_table_words``) as the run's memory file."""
    lo, hi = kernels.value_range(bits, signed)
    tv = TVParams.from_gamma(gamma, frac_bits=frac_bits, gamma_frac_bits=gamma_frac_bits)
    params = dict(IFM_H=h, IFM_W=w, CH=ch, PE=pe, ELEM_W=bits, SIGNED=int(signed), LO=lo, HI=hi)
    params.update(FRAC_BITS=frac_bits, GAMMA_Q=tv.gamma_q, GAMMA_FRAC_BITS=gamma_frac_bits, TABLE_FILE="tv_table.mem")

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        words, width = memfiles.tv_table_words(hi - lo, tv)
        return {"frames": frames}, {"tv_table.mem": _memh_text(words, width)}

    return Case("tv_smooth", name, params, prepare=prepare)


# ------------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------------
def all_cases() -> list[Case]:
    """Every bench case of the library (the table is :mod:`qnnflow.sim.case_table`)."""
    from qnnflow.sim.case_table import table

    return table()


_BENCH_DEFAULTS = {
    "sliding_window": {"frames": 3, "signed": False},
    "maxpool": {"frames": 4},
    "label_select": {"frames": 40},
    "add_streams": {"beats": 300},
    "duplicate_streams": {"beats": 300},
    "fifo": {"beats": 1500},
    "fifo_chain": {"beats": 1500},
    "width_converter": {"words": 120},
    "skid_buffer": {"frames": 20, "beats": 16},
}


def case_from_params(module: str, name: str, params: dict, *, slow: bool = False) -> Case:
    """A bench case for ``module`` at HDL ``params`` (memory contents drawn at random)."""
    if module == "mvau":
        p = params
        return mvau_case(
            name, mw=p["MW"], mh=p["MH"], pe=p["PE"], simd=p["SIMD"], in_w=p["IN_W"],
            in_signed=bool(p["IN_SIGNED"]), in_bipolar=bool(p["IN_BIPOLAR"]), w_w=p["W_W"],
            w_signed=bool(p["W_SIGNED"]), w_bipolar=bool(p["W_BIPOLAR"]), num_t=p["NUM_T"],
            out_offset=p["OUT_OFFSET"], vectors=8, slow=slow, search=bool(p.get("THR_SEARCH", 0)),
            thr_bram=bool(p.get("THR_BRAM", 0)),
        )  # fmt: skip
    if module == "vvau":
        p = params
        return vvau_case(
            name, ch=p["CH"], kk=p["KK"], pe=p["PE"], simd=p["SIMD"], in_w=p["IN_W"],
            in_signed=bool(p["IN_SIGNED"]), in_bipolar=bool(p["IN_BIPOLAR"]), w_w=p["W_W"],
            w_signed=bool(p["W_SIGNED"]), w_bipolar=bool(p["W_BIPOLAR"]), num_t=p["NUM_T"],
            out_offset=p["OUT_OFFSET"], windows=8, slow=slow, search=bool(p.get("THR_SEARCH", 0)),
            thr_bram=bool(p.get("THR_BRAM", 0)),
        )  # fmt: skip
    if module == "tv_smooth":
        p = params
        lo, hi = p["LO"], p["HI"]
        if (lo, hi) != kernels.value_range(p["ELEM_W"], bool(p["SIGNED"])):
            raise ValueError(f"tv_smooth cases use the whole range of ELEM_W bits, not LO..HI = {lo}..{hi}")
        gamma = (p["GAMMA_Q"] / 2 ** p["GAMMA_FRAC_BITS"]) ** 0.5
        shape = dict(h=p["IFM_H"], w=p["IFM_W"], ch=p["CH"], pe=p["PE"], bits=p["ELEM_W"], signed=bool(p["SIGNED"]))
        fixed = dict(frac_bits=p["FRAC_BITS"], gamma_frac_bits=p["GAMMA_FRAC_BITS"])
        return tv_smooth_case(name, gamma=gamma, **shape, **fixed)
    if module == "thresholding":
        p = params
        case = thresholding_case(
            name, ch=p["CH"], pe=p["PE"], in_w=p["IN_W"], in_signed=bool(p["IN_SIGNED"]), num_t=p["NUM_T"],
            out_offset=p["OUT_OFFSET"], in_bipolar=bool(p.get("IN_BIPOLAR", 0)), search=bool(p.get("THR_SEARCH", 0)),
        )  # fmt: skip
        return Case(case.module, case.id, case.params, case.config, case.prepare, slow=slow)
    return Case(module, name, dict(params), dict(_BENCH_DEFAULTS.get(module, {})), slow=slow)


def representative_cases() -> list[Case]:
    """One slow case per module at its representative parameters (qnnflow.sim.lint.REPRESENTATIVE),
    the configuration of the closing figures (ECP5 cells and cycles per frame); not for the
    building blocks without a bench of their own (``bench=False``)."""
    from qnnflow.sim.lint import REPRESENTATIVE

    return [
        case_from_params(m, "representative", dict(cfg.params), slow=True)
        for m, cfg in REPRESENTATIVE.items()
        if cfg.bench
    ]


def by_id(full_id: str) -> Case:
    for case in all_cases() + representative_cases():
        if case.full_id == full_id:
            return case
    raise ValueError(f"no bench case {full_id!r}; `python -m qnnflow.sim.runner --list x` lists them")


# ------------------------------------------------------------------------------------------------
# label_select with a per-class map (flows/passes/label_map.py)
# ------------------------------------------------------------------------------------------------
def label_select_map_case(
    name: str,
    *,
    num: int,
    pe: int,
    elem_w: int,
    signed: bool,
    mul_w: int = 0,
    off_w: int = 0,
    shift: int = 0,
    mul: list[int] | None = None,
    frames: int = 60,
) -> Case:
    """label_select with per-class multipliers (``mul_w`` bits, 0: none; or the given ``mul``) and
    offsets (``off_w`` bits, 0: none), value shifted by ``shift``. The constants are drawn from the
    case's name, with both extremes of the multiplier range among them; VAL_W is the width the map
    needs (kernels.label_value_width), so an extreme value that wrapped would fail."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if mul is None and mul_w:
        mlo, mhi = kernels.value_range(mul_w, True)
        mul = rng.integers(mlo, mhi + 1, size=num).tolist()
        mul[0], mul[1 % num], mul[-1] = mlo, mlo, mhi
    if off_w:
        olo, ohi = kernels.value_range(off_w, True)
        offset = rng.integers(olo, ohi + 1, size=num).tolist()
        offset[1 % num] = offset[0]  # with equal multipliers, classes 0 and 1 tie on equal inputs
    else:
        offset = [0] * num
    has_mul = mul is not None
    mul = mul if has_mul else [1] * num
    x_range = kernels.value_range(elem_w, signed)
    params = dict(
        NUM=num, PE=pe, ELEM_W=elem_w, SIGNED=int(signed), OUT_W=max(1, (num - 1).bit_length()),
        HAS_MUL=int(has_mul), HAS_OFFSET=int(bool(off_w)),
        MUL_W=kernels.signed_width(min(mul), max(mul)) if has_mul else 2, OFF_W=off_w or 2, SHIFT=shift,
        VAL_W=kernels.label_value_width(x_range, mul, offset, shift, elem_w),
        MUL_FILE="class_mul.mem" if has_mul else "", OFFSET_FILE="class_offset.mem" if off_w else "",
    )  # fmt: skip

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        files = {}
        for key, values, width in (("MUL_FILE", mul, params["MUL_W"]), ("OFFSET_FILE", offset, params["OFF_W"])):
            if params[key]:
                files[params[key]] = _memh_text(memfiles.label_map_words(values, pe, width), pe * width)
        return {"mul": mul, "offset": offset, "frames": frames}, files

    return Case("label_select", name, params, prepare=prepare)
