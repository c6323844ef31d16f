"""What the ``estimates`` benchmark (:mod:`qnnflow.bench.estimates`) synthesizes: the designs
(:data:`CASES`) and the module configurations beside them (:data:`SWEEP`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One design of the benchmark: a model and a target in cycles per frame (None: PE = SIMD = 1)."""

    name: str
    model: str  # "digits", "digits-build" (build/digits as it is), "tfc-w2a2-third-party" or a zoo preset
    target_cycles: int | None


CASES = (
    Case("digits-cnn-w2a2@10000", "digits", 10_000),
    Case("digits-cnn-w2a2@pe1", "digits", None),
    Case("digits-cnn-w2a2@10000-sized-fifos", "digits-build", 10_000),
    Case("tfc-w2a2-third-party@1000", "tfc-w2a2-third-party", 1_000),
    Case("tfc-w2a2-third-party@10000", "tfc-w2a2-third-party", 10_000),
    Case("cnv-w1a1-random@50000", "cnv-w1a1", 50_000),
)


def _mvau(mw, mh, pe, simd, in_w, w_w, *, in_signed=0, w_signed=1, bipolar="", num_t=0, out_w=0, offset=0) -> dict:
    """hw/mvau.sv parameters; ``bipolar``: "xnor" (input and weights), "w" (weights) or ""."""
    from qnnflow.flows.ir import kernels

    xnor, wb = bipolar == "xnor", bipolar in ("xnor", "w")
    x_range = (0, 1) if xnor else kernels.value_range(in_w, bool(in_signed))
    w_range = (0, 1) if xnor else (-1, 1) if wb else kernels.value_range(w_w, bool(w_signed))
    acc_w = kernels.accumulator_width(mw, x_range, w_range, xnor=xnor)
    return {
        "MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "IN_W": in_w, "IN_SIGNED": in_signed, "IN_BIPOLAR": int(xnor),
        "W_W": w_w, "W_SIGNED": w_signed, "W_BIPOLAR": int(wb), "ACC_W": acc_w if num_t else (out_w or acc_w),
        "NUM_T": num_t, "OUT_W": out_w if num_t else (out_w or acc_w), "OUT_OFFSET": offset,
        "WEIGHT_FILE": "weights.mem", "THRESH_FILE": "thresholds.mem" if num_t else "",
    }  # fmt: skip


def _thr(ch, pe, in_w, num_t, out_w, *, signed=1, offset=0) -> dict:
    return {
        "CH": ch, "PE": pe, "IN_W": in_w, "IN_SIGNED": signed, "NUM_T": num_t, "THR_W": in_w + 1, "OUT_W": out_w,
        "OUT_OFFSET": offset, "THRESH_FILE": "thresholds.mem",
    }  # fmt: skip


def _vvau(ch, pe, simd, in_w, w_w, num_t, *, xnor=False, kk=9) -> dict:
    """A 3 x 3 depthwise layer, unsigned input, signed weights (both bipolar with ``xnor``)."""
    from qnnflow.flows.ir import kernels

    x_range = (-1, 1) if xnor else kernels.value_range(in_w, False)
    w_range = (-1, 1) if xnor else kernels.value_range(w_w, True)
    acc_w = kernels.accumulator_width(kk, x_range, w_range, xnor=xnor)
    return {
        "CH": ch, "KK": kk, "PE": pe, "SIMD": simd, "IN_W": in_w, "IN_SIGNED": 0, "IN_BIPOLAR": int(xnor),
        "W_W": w_w, "W_SIGNED": int(not xnor), "W_BIPOLAR": int(xnor), "ACC_W": acc_w, "NUM_T": num_t,
        "OUT_W": max(1, num_t.bit_length()) if num_t else acc_w, "OUT_OFFSET": 0,
        "WEIGHT_FILE": "weights.mem", "THRESH_FILE": "thresholds.mem" if num_t else "",
    }  # fmt: skip


def _search(params: dict) -> dict:
    """``params`` (hw/mvau.sv, vvau.sv or thresholding.sv) with the thresholds counted by binary search."""
    return {**params, "THRESH_FILE": "", "THR_SEARCH": 1, "THRESH_PREFIX": "thresholds"}


def _swg(h, w, ch, simd, elem_w, k, stride=1, pad=0) -> dict:
    return {"IFM_H": h, "IFM_W": w, "CH": ch, "SIMD": simd, "ELEM_W": elem_w, "K": k, "STRIDE": stride, "PAD": pad}


# Layer configurations beside the designs' own: the op types they lack (Thresholding, AddStreams,
# DuplicateStreams, VVAU), deeper FIFOs than codegen's default, and foldings / widths they do not reach
# (DSP multipliers, wide XNOR, PE > 1 pooling and label selection, narrowing converters).
SWEEP: tuple[tuple[str, dict], ...] = (
    ("mvau", _mvau(64, 32, 4, 8, 2, 2, num_t=3, out_w=2)),
    ("mvau", _mvau(256, 64, 8, 16, 2, 2, num_t=3, out_w=2)),
    ("mvau", _mvau(32, 32, 1, 2, 2, 2, num_t=3, out_w=2)),
    ("mvau", _mvau(288, 64, 8, 32, 1, 1, bipolar="xnor", num_t=1, out_w=1)),
    ("mvau", _mvau(256, 64, 16, 16, 1, 1, bipolar="xnor", num_t=1, out_w=1)),
    ("mvau", _mvau(64, 32, 4, 4, 8, 8, in_signed=1)),
    ("mvau", _mvau(128, 64, 4, 16, 4, 4, in_signed=1, w_signed=0, num_t=15, out_w=4, offset=-8)),
    ("mvau", _mvau(128, 64, 4, 8, 2, 1, bipolar="w", num_t=3, out_w=2)),
    ("mvau", _mvau(64, 16, 2, 16, 4, 2, in_signed=1)),
    ("thresholding", _thr(64, 1, 8, 3, 2)),
    ("thresholding", _thr(64, 8, 8, 3, 2)),
    ("thresholding", _thr(32, 4, 12, 15, 4, offset=-8)),
    ("thresholding", _thr(256, 16, 6, 1, 1)),
    ("thresholding", _thr(1, 1, 8, 7, 3, signed=0)),
    ("sliding_window", _swg(32, 32, 3, 3, 8, 3, pad=1)),
    ("sliding_window", _swg(16, 16, 64, 16, 2, 3, pad=1)),
    ("sliding_window", _swg(8, 8, 32, 32, 4, 3)),
    ("sliding_window", _swg(28, 28, 1, 1, 8, 5, pad=2)),
    ("sliding_window", _swg(16, 16, 16, 4, 2, 2, stride=2)),
    ("maxpool", {"IFM_H": 32, "IFM_W": 32, "CH": 64, "PE": 8, "ELEM_W": 2, "SIGNED": 0, "K": 2}),
    ("maxpool", {"IFM_H": 16, "IFM_W": 16, "CH": 16, "PE": 16, "ELEM_W": 4, "SIGNED": 1, "K": 2}),
    ("maxpool", {"IFM_H": 24, "IFM_W": 24, "CH": 32, "PE": 1, "ELEM_W": 8, "SIGNED": 0, "K": 3}),
    ("label_select", {"NUM": 10, "PE": 2, "ELEM_W": 16, "SIGNED": 1, "OUT_W": 4}),
    ("label_select", {"NUM": 100, "PE": 10, "ELEM_W": 8, "SIGNED": 1, "OUT_W": 7}),
    ("label_select", {"NUM": 1000, "PE": 1, "ELEM_W": 12, "SIGNED": 0, "OUT_W": 10}),
    ("add_streams", {"PE": 1, "IN_W": 4, "IN_SIGNED": 1, "OUT_W": 5}),
    ("add_streams", {"PE": 8, "IN_W": 4, "IN_SIGNED": 0, "OUT_W": 5}),
    ("add_streams", {"PE": 16, "IN_W": 8, "IN_SIGNED": 1, "OUT_W": 9}),
    ("add_streams", {"PE": 32, "IN_W": 2, "IN_SIGNED": 0, "OUT_W": 3}),
    ("duplicate_streams", {"DATA_W": 8, "NUM_OUT": 2}),
    ("duplicate_streams", {"DATA_W": 64, "NUM_OUT": 2}),
    ("duplicate_streams", {"DATA_W": 32, "NUM_OUT": 3}),
    ("duplicate_streams", {"DATA_W": 256, "NUM_OUT": 2}),
    ("fifo", {"DATA_W": 8, "DEPTH": 16, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 32, "DEPTH": 32, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 5, "DEPTH": 52, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 64, "DEPTH": 73, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 32, "DEPTH": 128, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 16, "DEPTH": 256, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 64, "DEPTH": 512, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 8, "DEPTH": 1024, "USE_RAM": 1}),
    ("fifo", {"DATA_W": 2, "DEPTH": 4096, "USE_RAM": 1}),
    ("width_converter", {"IN_W": 8, "OUT_W": 64}),
    ("width_converter", {"IN_W": 64, "OUT_W": 8}),
    ("width_converter", {"IN_W": 16, "OUT_W": 256}),
    ("width_converter", {"IN_W": 256, "OUT_W": 16}),
    ("width_converter", {"IN_W": 30, "OUT_W": 10}),
    # depthwise (hw/vvau.sv): the configurations flows/compile/resources_dw.py's ECP5 costs were fitted on
    ("vvau", _vvau(32, 4, 1, 2, 2, 3)),
    ("vvau", _vvau(32, 32, 1, 2, 2, 3)),
    ("vvau", _vvau(16, 16, 3, 4, 4, 15)),
    ("vvau", _vvau(16, 2, 1, 4, 4, 15)),
    ("vvau", _vvau(8, 8, 9, 1, 1, 1, xnor=True)),
    ("vvau", _vvau(32, 4, 1, 2, 2, 0)),
    ("vvau", _vvau(64, 8, 1, 3, 3, 7)),
    ("vvau", _vvau(8, 1, 1, 8, 8, 0)),
    # the thresholds' count by binary search (THR_SEARCH, hw/threshold_search.sv): 255 thresholds
    # of 2 lanes over 32 folds, 31 of one lane over 32, 8-bit activations of an MVAU and a VVAU
    ("thresholding", _search(_thr(64, 2, 12, 255, 8))),
    ("thresholding", _search(_thr(32, 1, 8, 31, 5))),
    ("mvau", _search(_mvau(9, 32, 2, 1, 8, 8, num_t=255, out_w=8))),
    ("vvau", _search(_vvau(16, 4, 1, 4, 4, 63))),
)
