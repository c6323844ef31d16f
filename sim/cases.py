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
) -> Case:
    """An MVAU case: random weights with a corner row of all-max and one of all-min weights, random
    thresholds with the corner rows' extremes among them (see :func:`corner_inputs`).

    ``acc_w`` overrides the derived accumulator width (a test narrows it to see the bench fail);
    the thresholds are then clipped to what ``acc_w`` bits hold, the reference stays exact."""
    x_rng = _dtype_range(in_w, in_signed, in_bipolar)
    w_rng = _dtype_range(w_w, w_signed, w_bipolar, ternary)
    xnor = in_bipolar and w_bipolar
    derived = kernels.accumulator_width(mw, x_rng, w_rng, xnor=xnor)
    acc_w = derived if acc_w is None else acc_w
    lo, hi = kernels.accumulator_range(mw, x_rng, w_rng, xnor=xnor)
    if num_t:
        out_lo, out_hi = out_offset, out_offset + num_t
        out_w = kernels.signed_width(out_lo, out_hi) if out_lo < 0 else max(1, out_hi.bit_length())
    else:
        out_w = acc_w
    params = dict(
        MW=mw,
        MH=mh,
        PE=pe,
        SIMD=simd,
        IN_W=in_w,
        IN_SIGNED=int(in_signed),
        IN_BIPOLAR=int(in_bipolar),
        W_W=w_w,
        W_SIGNED=int(w_signed),
        W_BIPOLAR=int(w_bipolar),
        ACC_W=acc_w,
        NUM_T=num_t,
        OUT_W=out_w,
        OUT_OFFSET=out_offset,
        WEIGHT_FILE="weights.mem",
        THRESH_FILE="thresholds.mem" if num_t else "",
    )

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        rng = np.random.default_rng(seed + 1)
        w = _corner_weights(_random_values(rng, *w_rng, (mh, mw), bipolar=w_bipolar), w_rng)
        words = memfiles.mvau_weight_words(w, pe, simd, w_w, signed=w_signed, bipolar=w_bipolar)
        files = {"weights.mem": _memh_text(words, pe * simd * w_w)}
        extra = {"weights": w.tolist(), "x_range": list(x_rng), "w_range": list(w_rng), "vectors": vectors}
        if num_t:
            acc = kernels.mvau(corner_inputs(mw, x_rng), w, x_bipolar=in_bipolar, w_bipolar=w_bipolar)
            thr = _corner_thresholds(_random_thresholds(rng, mh, num_t, lo, hi), np.stack([acc.min(0), acc.max(0)], 1))
            if acc_w != derived:
                thr = np.clip(thr, *kernels.value_range(acc_w, True))
            files["thresholds.mem"] = _memh_text(memfiles.threshold_words(thr, pe, acc_w), pe * num_t * acc_w)
            extra["thresholds"] = thr.tolist()
        return extra, files

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
) -> Case:
    """A depthwise (VVAU) case: CH channels of KK window positions each, random weights (C, KK)
    with channel 0 all-max and channel 1 all-min, random thresholds with those channels' extremes
    among them; the bench puts the all-max and all-min windows first (:func:`corner_inputs`), so
    both accumulator extremes occur. ``acc_w`` overrides the derived accumulator width."""
    x_rng = _dtype_range(in_w, in_signed, in_bipolar)
    w_rng = _dtype_range(w_w, w_signed, w_bipolar, ternary)
    xnor = in_bipolar and w_bipolar
    derived = kernels.accumulator_width(kk, x_rng, w_rng, xnor=xnor)
    acc_w = derived if acc_w is None else acc_w
    lo, hi = kernels_dw.vvau_accumulator_range(kk, x_rng, w_rng, xnor=xnor)
    if num_t:
        out_lo, out_hi = out_offset, out_offset + num_t
        out_w = kernels.signed_width(out_lo, out_hi) if out_lo < 0 else max(1, out_hi.bit_length())
    else:
        out_w = acc_w
    params = dict(
        CH=ch,
        KK=kk,
        PE=pe,
        SIMD=simd,
        IN_W=in_w,
        IN_SIGNED=int(in_signed),
        IN_BIPOLAR=int(in_bipolar),
        W_W=w_w,
        W_SIGNED=int(w_signed),
        W_BIPOLAR=int(w_bipolar),
        ACC_W=acc_w,
        NUM_T=num_t,
        OUT_W=out_w,
        OUT_OFFSET=out_offset,
        WEIGHT_FILE="weights.mem",
        THRESH_FILE="thresholds.mem" if num_t else "",
    )

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        rng = np.random.default_rng(seed + 1)
        w = _corner_weights(_random_values(rng, *w_rng, (ch, kk), bipolar=w_bipolar), w_rng)
        words = memfiles.vvau_weight_words(w, pe, simd, w_w, signed=w_signed, bipolar=w_bipolar)
        files = {"weights.mem": _memh_text(words, pe * simd * w_w)}
        extra = {"weights": w.tolist(), "x_range": list(x_rng), "w_range": list(w_rng), "windows": windows}
        if num_t:
            corners = corner_inputs(kk * ch, x_rng)
            acc = kernels_dw.vvau(corners, w, x_bipolar=in_bipolar, w_bipolar=w_bipolar)
            thr = _corner_thresholds(_random_thresholds(rng, ch, num_t, lo, hi), np.stack([acc.min(0), acc.max(0)], 1))
            if acc_w != derived:
                thr = np.clip(thr, *kernels.value_range(acc_w, True))
            files["thresholds.mem"] = _memh_text(memfiles.threshold_words(thr, pe, acc_w), pe * num_t * acc_w)
            extra["thresholds"] = thr.tolist()
        return extra, files

    return Case("vvau", name, params, prepare=prepare, slow=slow)


def _memh_text(words: list[int], width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


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
) -> Case:
    """A thresholding case: random ascending thresholds, channels 0 and 1 with the input's extremes
    among them; the bench puts all-max and all-min pixels first (:func:`corner_inputs`). A bipolar
    input (``in_bipolar``, one bit, 0 meaning -1) has thresholds in -1..2 against the values
    -1 / +1: a threshold of 0 fires on +1 only, where a comparison with the code would fire on both."""
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
        THRESH_FILE="thresholds.mem",
    )

    def prepare(seed: int) -> tuple[dict, dict[str, str]]:
        rng = np.random.default_rng(seed + 1)
        thr = _corner_thresholds(_random_thresholds(rng, ch, num_t, lo, hi), np.array([[lo, hi]] * ch))
        text = _memh_text(memfiles.threshold_words(thr, pe, thr_w), pe * num_t * thr_w)
        return {"thresholds": thr.tolist(), "frames": frames}, {"thresholds.mem": text}

    return Case("thresholding", name, params, prepare=prepare)


# ------------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------------
def all_cases() -> list[Case]:
    return [
        # -- mvau: bipolar / ternary / 2-, 4-, 8-bit, signed and unsigned; PE and SIMD at 1, middle, full
        mvau_case("pe1-simd1-w2a2-thr", mw=8, mh=4, pe=1, simd=1, in_w=2, w_w=2, num_t=3),
        mvau_case("pe2-simd4-w2a2-thr", mw=16, mh=8, pe=2, simd=4, in_w=2, w_w=2, num_t=3, vectors=16),
        mvau_case(
            "pe8-simd16-w1a1-xnor",
            mw=16,
            mh=8,
            pe=8,
            simd=16,
            in_w=1,
            in_bipolar=True,
            w_w=1,
            w_bipolar=True,
            num_t=1,
            vectors=40,
        ),
        mvau_case("pe4-simd8-wternary-a4u", mw=32, mh=8, pe=4, simd=8, in_w=4, w_w=2, ternary=True, vectors=20),
        mvau_case("pe2-simd2-w8a8s", mw=8, mh=4, pe=2, simd=2, in_w=8, in_signed=True, w_w=8, vectors=16),
        mvau_case(
            "pe4-simd4-w1a2-thr-off",
            mw=16,
            mh=8,
            pe=4,
            simd=4,
            in_w=2,
            w_w=1,
            w_bipolar=True,
            num_t=3,
            out_offset=-1,
            vectors=16,
        ),
        mvau_case(
            "pe2-simd8-w4ua4s-thr15",
            mw=16,
            mh=4,
            pe=2,
            simd=8,
            in_w=4,
            in_signed=True,
            w_w=4,
            w_signed=False,
            num_t=15,
            out_offset=-8,
            vectors=16,
        ),
        mvau_case("pe4-simd2-w2a1b", mw=8, mh=4, pe=4, simd=2, in_w=1, in_bipolar=True, w_w=2, vectors=16),
        mvau_case("pe8-simd8-w2a2-thr-big", mw=64, mh=32, pe=8, simd=8, in_w=2, w_w=2, num_t=3, vectors=8, slow=True),
        mvau_case(
            "pe1-simd32-w1a1-xnor-big",
            mw=64,
            mh=16,
            pe=1,
            simd=32,
            in_w=1,
            in_bipolar=True,
            w_w=1,
            w_bipolar=True,
            num_t=1,
            vectors=8,
            slow=True,
        ),
        # -- vvau (depthwise): bipolar / ternary / 2-, 4-, 8-bit; PE at 1, middle, CH; SIMD (needs PE = CH)
        # at 1, middle, KK, and above the adder-tree group of 8 (two registered halves)
        vvau_case("pe1-simd1-ch4-k3-w2a2-thr", ch=4, kk=9, pe=1, simd=1, in_w=2, w_w=2, num_t=3),
        vvau_case(
            "pe2-simd1-ch8-k3-w4a4s-thr15-off",
            ch=8, kk=9, pe=2, simd=1, in_w=4, in_signed=True, w_w=4, num_t=15, out_offset=-8, windows=16,
        ),  # fmt: skip
        vvau_case(
            "pe4-simd3-ch4-k3-w1a1-xnor",
            ch=4, kk=9, pe=4, simd=3, in_w=1, in_bipolar=True, w_w=1, w_bipolar=True, num_t=1, windows=40,
        ),  # fmt: skip
        vvau_case("pe3-simd9-ch3-k3-wternary-a4u", ch=3, kk=9, pe=3, simd=9, in_w=4, w_w=2, ternary=True, windows=24),
        vvau_case(
            "pe2-simd2-ch2-k2-w8a8s", ch=2, kk=4, pe=2, simd=2, in_w=8, in_signed=True, w_w=8, windows=16
        ),  # fmt: skip
        vvau_case(
            "pe8-simd1-ch16-k5-w1a2-thr-off",
            ch=16, kk=25, pe=8, simd=1, in_w=2, w_w=1, w_bipolar=True, num_t=3, out_offset=-1, windows=10,
        ),  # fmt: skip
        vvau_case("pe4-simd1-ch8-k2-w2a1b", ch=8, kk=4, pe=4, simd=1, in_w=1, in_bipolar=True, w_w=2, windows=16),
        vvau_case(
            "pe2-simd25-ch2-k5-w4ua8u-thr7",
            ch=2, kk=25, pe=2, simd=25, in_w=8, w_w=4, w_signed=False, num_t=7, windows=16,
        ),  # fmt: skip
        # -- thresholding
        thresholding_case("pe1-ch4-a4u-t3", ch=4, pe=1, in_w=4, in_signed=False, num_t=3),
        thresholding_case("pe2-ch8-a8s-t15-off", ch=8, pe=2, in_w=8, in_signed=True, num_t=15, out_offset=-8),
        thresholding_case("pe4-ch4-a6s-t1", ch=4, pe=4, in_w=6, in_signed=True, num_t=1),
        # bipolar input (a BIPOLAR stream: one bit, 0 meaning -1)
        thresholding_case("pe2-ch6-a1b-t1", ch=6, pe=2, in_w=1, in_signed=False, in_bipolar=True, num_t=1, frames=40),
        thresholding_case(
            "pe1-ch4-a1b-t3-off", ch=4, pe=1, in_w=1, in_signed=False, in_bipolar=True, num_t=3, out_offset=-1
        ),
        thresholding_case("pe8-ch8-a1b-t2", ch=8, pe=8, in_w=1, in_signed=False, in_bipolar=True, num_t=2, frames=40),
        # -- sliding_window (square kernels; STRIDE <= K)
        Case(
            "sliding_window",
            "k3-s1-p1-ch2-simd1",
            dict(IFM_H=6, IFM_W=6, CH=2, SIMD=1, ELEM_W=4, K=3, STRIDE=1, PAD=1),
            {"frames": 4, "signed": False},
        ),
        Case(
            "sliding_window",
            "k3-s1-p0-ch4-simd4",
            dict(IFM_H=5, IFM_W=5, CH=4, SIMD=4, ELEM_W=2, K=3, STRIDE=1, PAD=0),
            {"frames": 6, "signed": False},
        ),
        Case(
            "sliding_window",
            "k2-s2-p0-ch4-simd2",
            dict(IFM_H=6, IFM_W=7, CH=4, SIMD=2, ELEM_W=8, K=2, STRIDE=2, PAD=0),
            {"frames": 5, "signed": True},
        ),
        Case(
            "sliding_window",
            "k3-s2-p1-ch1-padm1",
            dict(IFM_H=7, IFM_W=6, CH=1, SIMD=1, ELEM_W=3, K=3, STRIDE=2, PAD=1, PAD_VALUE=-1),
            {"frames": 5, "signed": True},
        ),
        # -- sliding_window, non-square: Conv1d (a 1-row image, kernel 1 x K, stride and padding along W
        # only) and a 2 x 3 kernel with strides and padding per axis
        Case(
            "sliding_window",
            "conv1d-k3-s1-p1-ch4-simd2",
            dict(IFM_H=1, IFM_W=16, CH=4, SIMD=2, ELEM_W=4, K_H=1, K_W=3, STRIDE_H=1, STRIDE_W=1, PAD_H=0, PAD_W=1),
            {"frames": 6, "signed": False},
        ),
        Case(
            "sliding_window",
            "conv1d-k5-s2-p2-ch1-padm1",
            dict(IFM_H=1, IFM_W=21, CH=1, SIMD=1, ELEM_W=3, K_H=1, K_W=5, STRIDE_W=2, PAD_H=0, PAD_W=2, PAD_VALUE=-1),
            {"frames": 6, "signed": True},
        ),
        Case(
            "sliding_window",
            "conv1d-k4-s4-p0-ch3-simd3",
            dict(IFM_H=1, IFM_W=12, CH=3, SIMD=3, ELEM_W=8, K_H=1, K_W=4, STRIDE_W=4, PAD_H=0, PAD_W=0),
            {"frames": 8, "signed": True},
        ),
        Case(
            "sliding_window",
            "k2x3-s1x2-p1x1-ch2",
            dict(IFM_H=5, IFM_W=7, CH=2, SIMD=1, ELEM_W=2, K_H=2, K_W=3, STRIDE_H=1, STRIDE_W=2, PAD_H=1, PAD_W=1),
            {"frames": 4, "signed": False},
        ),
        # -- maxpool
        Case("maxpool", "k2-ch4-pe2-u4", dict(IFM_H=4, IFM_W=6, CH=4, PE=2, ELEM_W=4, SIGNED=0, K=2), {"frames": 8}),
        Case(
            "maxpool", "k3-ch2-pe1-s8-rem", dict(IFM_H=7, IFM_W=8, CH=2, PE=1, ELEM_W=8, SIGNED=1, K=3), {"frames": 5}
        ),
        Case("maxpool", "k2-ch3-pe3-s2", dict(IFM_H=4, IFM_W=4, CH=3, PE=3, ELEM_W=2, SIGNED=1, K=2), {"frames": 10}),
        # 1-D pooling (a Conv1d network's MaxPool1d, H = 1) and a non-square window with a remainder
        Case(
            "maxpool", "k1x3-h1-ch4-pe2-u3", dict(IFM_H=1, IFM_W=13, CH=4, PE=2, ELEM_W=3, SIGNED=0, K=3, K_H=1, K_W=3),
            {"frames": 6},
        ),  # fmt: skip
        Case(
            "maxpool", "k2x3-ch2-pe1-s4", dict(IFM_H=5, IFM_W=7, CH=2, PE=1, ELEM_W=4, SIGNED=1, K=2, K_H=2, K_W=3),
            {"frames": 4},
        ),  # fmt: skip
        # -- label_select
        Case("label_select", "n10-pe1-s8", dict(NUM=10, PE=1, ELEM_W=8, SIGNED=1, OUT_W=4), {"frames": 40}),
        Case("label_select", "n12-pe4-u3", dict(NUM=12, PE=4, ELEM_W=3, SIGNED=0, OUT_W=4), {"frames": 60}),
        Case("label_select", "n8-pe8-s2", dict(NUM=8, PE=8, ELEM_W=2, SIGNED=1, OUT_W=3), {"frames": 80}),
        # per-class maps: multipliers and offsets; offsets with a shift (one scale for all classes);
        # negative multipliers only (PE = NUM); -1 for all with a shift; 16-bit values to 40+ bits
        label_select_map_case("n10-pe1-s6-mul5-off8", num=10, pe=1, elem_w=6, signed=True, mul_w=5, off_w=8),
        label_select_map_case("n12-pe4-u4-off9-sh3", num=12, pe=4, elem_w=4, signed=False, off_w=9, shift=3),
        label_select_map_case(
            "n8-pe8-s3-mulneg", num=8, pe=8, elem_w=3, signed=True, mul=[-3, -1, -2, -4, -1, -3, -2, -1]
        ),
        label_select_map_case(
            "n10-pe5-s5-neg1-off7-sh2", num=10, pe=5, elem_w=5, signed=True, mul=[-1] * 10, off_w=7, shift=2
        ),
        label_select_map_case(
            "n6-pe2-s16-mul24-off32", num=6, pe=2, elem_w=16, signed=True, mul_w=24, off_w=32, frames=40
        ),
        # -- add_streams
        Case("add_streams", "pe1-s4", dict(PE=1, IN_W=4, IN_SIGNED=1, OUT_W=5), {"beats": 300}),
        Case("add_streams", "pe4-u2", dict(PE=4, IN_W=2, IN_SIGNED=0, OUT_W=3), {"beats": 300}),
        # -- duplicate_streams
        Case("duplicate_streams", "n2-w8", dict(DATA_W=8, NUM_OUT=2), {"beats": 300}),
        Case("duplicate_streams", "n3-w5", dict(DATA_W=5, NUM_OUT=3), {"beats": 300}),
        # -- fifo
        Case("fifo", "ram-d16-w12", dict(DATA_W=12, DEPTH=16, USE_RAM=1), {"beats": 400}),
        Case("fifo", "regs-d5-w3", dict(DATA_W=3, DEPTH=5, USE_RAM=0), {"beats": 400}),
        # -- width_converter
        Case("width_converter", "8to32", dict(IN_W=8, OUT_W=32), {"words": 120}),
        Case("width_converter", "24to6", dict(IN_W=24, OUT_W=6), {"words": 120}),
        Case("width_converter", "10to20", dict(IN_W=10, OUT_W=20), {"words": 120}),
        Case("width_converter", "7to7", dict(IN_W=7, OUT_W=7), {"words": 120}),
        # -- skid_buffer
        Case("skid_buffer", "w13", dict(DATA_W=13), {"frames": 20, "beats": 16}),
    ]


# settings of a bench beyond the HDL parameters, for the modules whose cases are built from
# parameters alone (see representative_cases)
_BENCH_DEFAULTS = {
    "sliding_window": {"frames": 3, "signed": False},
    "maxpool": {"frames": 4},
    "label_select": {"frames": 40},
    "add_streams": {"beats": 300},
    "duplicate_streams": {"beats": 300},
    "fifo": {"beats": 1500},
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
            out_offset=p["OUT_OFFSET"], vectors=8, slow=slow,
        )  # fmt: skip
    if module == "vvau":
        p = params
        return vvau_case(
            name, ch=p["CH"], kk=p["KK"], pe=p["PE"], simd=p["SIMD"], in_w=p["IN_W"],
            in_signed=bool(p["IN_SIGNED"]), in_bipolar=bool(p["IN_BIPOLAR"]), w_w=p["W_W"],
            w_signed=bool(p["W_SIGNED"]), w_bipolar=bool(p["W_BIPOLAR"]), num_t=p["NUM_T"],
            out_offset=p["OUT_OFFSET"], windows=8, slow=slow,
        )  # fmt: skip
    if module == "thresholding":
        p = params
        case = thresholding_case(
            name, ch=p["CH"], pe=p["PE"], in_w=p["IN_W"], in_signed=bool(p["IN_SIGNED"]), num_t=p["NUM_T"],
            out_offset=p["OUT_OFFSET"], in_bipolar=bool(p.get("IN_BIPOLAR", 0)),
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
