"""RTL backends: one small object per hardware layer that maps its attributes onto the parameters
of one ``hw/`` module and writes that module's memory files.

This is the one table of layer -> module parameters: code generation calls :func:`backend` with the
dataflow graph (constants checked, memory files made), the resource estimates with ``model=None``
(:func:`qnnflow.flows.compile.resources.layer_params`: the same parameters as far as they follow from the
layer's attributes; a threshold count, which the backend reads from the constant, is then the most
the output type can count).

A backend knows nothing about tools or about the rest of the design: codegen (flows/codegen/generate.py)
asks it for the module name, the HDL parameters, the lanes of its input and output ports, and the
memory files (name -> words, word width) to write with :mod:`qnnflow.flows.codegen.memfiles`.

Value conventions (DESIGN.md): bipolar is one bit (0 meaning -1), signed values two's
complement, element i of a beat at bits ``[i*W +: W]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from qnnflow.flows.codegen import memfiles
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.layers import (
    FIFO,
    MVAU,
    VVAU,
    AddStreams,
    DuplicateStreams,
    LabelSelect,
    Layer,
    MaxPool,
    SlidingWindow,
    Thresholding,
    TVSmooth,
    WidthConverter,
    pair,
)
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


@dataclass(frozen=True)
class ElemType:
    """How one stream element is coded: ``bits`` wide, two's complement if ``signed``, or bipolar."""

    bits: int
    signed: bool
    bipolar: bool
    ternary: bool = False  # a 2-bit signed code holding only -1, 0, +1

    @classmethod
    def of(cls, name: str) -> ElemType:
        dt = DataType[name]
        if name == "BIPOLAR":
            return cls(1, False, True)
        return cls(int(dt.bitwidth()), bool(dt.signed()), False, name == "TERNARY")

    def value_range(self) -> tuple[int, int]:
        if self.ternary:
            return -1, 1
        return kernels.value_range(self.bits, self.signed, bipolar=self.bipolar)


@dataclass
class Memory:
    """One ``$readmemh`` file of a layer: its words and word width."""

    name: str
    words: list[int]
    width: int


@dataclass
class Backend:
    """What codegen needs to instantiate one layer."""

    layer: Layer
    module: str
    params: dict[str, int | str] = field(default_factory=dict)
    memories: list[Memory] = field(default_factory=list)
    in_lanes: int = 1  # input streams packed into the s_axis ports (AddStreams: 2)
    out_lanes: int = 1  # output streams packed into the m_axis ports (DuplicateStreams: NUM_OUT)


# the least folds whose thresholds go to block RAM (THR_BRAM): CNV-w1a1's 256 and 512 do; the
# digits CNN's second convolution (64 folds) put three more EBRs on the iCEBreaker's UP5K (25 of
# 30), where nextpnr then found no legal placement with seeds 1 to 3; iCE40 puts ROMs of 128 words
# and more into EBRs anyway (flows/implement/pnr.py ICE40_ROM_IN_EBR_WORDS)
THR_BRAM_FOLDS = 128


def _b(flag: bool) -> int:
    return 1 if flag else 0


def _threshold_bound(layer: Layer) -> int:
    """The most thresholds the layer's output type can count: its maximum less ``ActVal`` (one for a
    bipolar output); the count an estimate assumes before the constants are known."""
    out_type = layer.get("outputDataType")
    return 1 if out_type == "BIPOLAR" else max(1, int(DataType[out_type].max()) - int(layer.get("ActVal")))


# from this many thresholds per channel (activations of 5 bits and more) a layer whose thresholds
# are non-decreasing in every channel counts them by binary search (hw/threshold_search.sv: clog2(T+1)
# comparisons per value from narrow per-stage memories) instead of comparing all at once
# (hw/threshold_count.sv: T comparators and a word of PE*T thresholds per fold, which for 8-bit
# activations costs thousands of LUTs and block RAMs and does not meet timing)
SEARCH_MIN_T = 16


def threshold_search(layer: Layer, model: ModelWrapper | None) -> bool:
    """Whether ``layer``'s backend counts its thresholds by binary search (``THR_SEARCH``): at
    least :data:`SEARCH_MIN_T` of them per channel, each channel's non-decreasing once clipped to
    the compared value's range (otherwise the parallel compare, which counts any order). Without
    a ``model`` (an estimate) the thresholds are not known: the count the output type allows decides."""
    params = backend(layer, None).params
    if int(params.get("NUM_T", 0)) < SEARCH_MIN_T or model is None:
        return bool(params.get("THR_SEARCH", 0))
    return bool(backend(layer, model).params["THR_SEARCH"])


def _sorted_rows(thr: np.ndarray) -> bool:
    return bool(np.all(np.diff(thr, axis=1) >= 0))


def _initializer(model: ModelWrapper, layer: Layer, index: int, what: str) -> np.ndarray:
    name = layer.node.input[index] if len(layer.node.input) > index else ""
    value = model.get_initializer(name) if name else None
    if value is None:
        raise ValueError(f"{layer.where}: input {index} ({what}) must be a constant initializer, found {name!r}")
    return np.asarray(value)


def _mvau(layer: MVAU, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    mh, mw, pe, simd = (int(layer.get(k)) for k in ("MH", "MW", "PE", "SIMD"))
    xt, wt, ot = _mac_types(layer)
    xnor = bool(layer.get("binaryXnorMode"))
    if xnor and not (xt.bipolar and wt.bipolar):
        raise ValueError(
            f"{layer.where}: binaryXnorMode needs bipolar input and weights, found {xt} and "
            f"{layer.get('weightDataType')}"
        )
    if xt.bipolar and wt.bipolar and not xnor:
        raise ValueError(
            f"{layer.where}: with bipolar input and weights hw/mvau.sv computes the XNOR-popcount, "
            "so binaryXnorMode must be 1, not 0"
        )
    mems = [_mvau_weights(layer, model, mem_prefix, wt)] if model is not None else []
    if not _has_thresholds(layer) and ot.bipolar:
        raise ValueError(f"{layer.where}: without activation the output cannot be BIPOLAR")
    dims = {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd}
    be = _mac_layer_backend(
        layer, model, mem_prefix, mems, module="mvau", dims=dims, rows=(mh, "MH"), depth=mw, xnor=xnor
    )
    # weights in block RAM are read through banks (hw/mvau.sv W_BANK_D), one file per bank
    bank_d = memfiles.weight_bank_depth((mh // pe) * (mw // simd), pe * simd * wt.bits)
    if bank_d:
        pattern = f"{mem_prefix}_weights_b%0d.mem"
        be.params.update(WEIGHT_FILE=pattern, W_BANK_D=bank_d)
        if mems:
            banks = memfiles.weight_bank_files(pattern, mems[0].words, bank_d)
            be.memories[0:1] = [Memory(name, words, mems[0].width) for name, words in banks.items()]
    return be


def _mac_types(layer: MVAU | VVAU) -> tuple[ElemType, ElemType, ElemType]:
    """The element types of a MAC layer's input, weights and output."""
    return tuple(ElemType.of(layer.get(k)) for k in ("inputDataType", "weightDataType", "outputDataType"))


def _has_thresholds(layer: MVAU | VVAU) -> bool:
    return bool(not layer.get("noActivation") and len(layer.node.input) > 2 and layer.node.input[2])


def _mac_layer_backend(
    layer: MVAU | VVAU, model: ModelWrapper | None, mem_prefix: str, mems: list[Memory], *, module: str,
    dims: dict[str, int], rows: tuple[int, str], depth: int, xnor: bool,
) -> Backend:  # fmt: skip
    """The backend of a MAC layer (``hw/<module>.sv``) whose XNOR mode, weight memory (``mems``) and
    output type the caller checked: its accumulator, thresholds and HDL parameters (``dims`` first).
    ``rows``: the number of output channels and its attribute's name; ``depth``: products per row."""
    xt, wt, ot = _mac_types(layer)
    if _has_thresholds(layer):
        rngs = (xt.value_range(), wt.value_range())
        acc_w = kernels.accumulator_width(depth, *rngs, xnor=xnor, where=layer.where)
        num_t, out_w, offset = _threshold_bound(layer), ot.bits, 0 if ot.bipolar else int(layer.get("ActVal"))
        thr_params = _threshold_names(num_t, num_t >= SEARCH_MIN_T, mem_prefix)
        if model is not None:
            acc_range = kernels.accumulator_range(depth, *rngs, xnor=xnor)
            thr = _thresholds(layer, model, 2, rows[0], acc_range, rows[1])
            num_t = int(thr.shape[1])
            thr_mems, thr_params = _threshold_memories(layer, thr, mem_prefix, acc_w)
            mems += thr_mems
    else:
        # without activation the output is the accumulator in the output type's width: sums are
        # exact modulo 2**ACC_W, so the bits are right whenever the result fits the output type
        # (signed, or unsigned as an XNOR-popcount is)
        acc_w, num_t, out_w, offset = ot.bits, 0, ot.bits, 0
        thr_params = _threshold_names(0, False, mem_prefix)
    if not 2 <= acc_w <= 32:
        raise ValueError(f"{layer.where}: hw/{module}.sv needs an accumulator of 2..32 bits, this one needs {acc_w}")
    # thresholds compared at once from a memory of THR_BRAM_FOLDS folds or more: in block RAM where
    # a weight ROM of that shape would be (hw/mac_pipeline.sv THR_BRAM: asked for, and read through
    # a second register beside the compares)
    nf, pe = rows[0] // dims["PE"], dims["PE"]
    thr_bram = bool(num_t and not thr_params["THR_SEARCH"] and nf >= THR_BRAM_FOLDS
                    and memfiles.rom_in_block_ram(nf, pe * num_t * acc_w))  # fmt: skip
    params = {
        **dims,
        "IN_W": xt.bits, "IN_SIGNED": _b(xt.signed), "IN_BIPOLAR": _b(xt.bipolar),
        "W_W": wt.bits, "W_SIGNED": _b(wt.signed), "W_BIPOLAR": _b(wt.bipolar),
        "ACC_W": acc_w, "NUM_T": num_t, "OUT_W": out_w, "OUT_OFFSET": offset,
        "WEIGHT_FILE": _file(mems, 0, f"{mem_prefix}_weights.mem"), **thr_params, "THR_BRAM": _b(thr_bram),
    }  # fmt: skip
    return Backend(layer, module, params, mems)


def _mvau_weights(layer: MVAU, model: ModelWrapper, mem_prefix: str, wt: ElemType) -> Memory:
    mh, mw = int(layer.get("MH")), int(layer.get("MW"))
    w = _initializer(model, layer, 1, "weights")
    # the layer holds W[row][col] as (MH, MW), as kernels.mvau and hw/mvau.sv take it; never
    # guess a transpose from the shape (a square matrix would be read transposed)
    if w.shape != (mh, mw):
        raise ValueError(f"{layer.where}: weights must have shape (MH={mh}, MW={mw}), not {w.shape}")
    w = np.asarray(w, dtype=np.float64)
    if not np.array_equal(w, np.round(w)):
        raise ValueError(f"{layer.where}: weights must be integers for hw/mvau.sv")
    return _weight_memory(layer, w, mem_prefix, wt, memfiles.mvau_weight_words)


def _weight_memory(
    layer: MVAU | VVAU, w: np.ndarray, mem_prefix: str, wt: ElemType, layout: Callable[..., list[int]]
) -> Memory:
    """The checked integer weights ``w`` as a memory in the word ``layout`` of the layer's module."""
    pe, simd = int(layer.get("PE")), int(layer.get("SIMD"))
    words = layout(w.astype(np.int64), pe, simd, wt.bits, signed=wt.signed, bipolar=wt.bipolar)
    return Memory(f"{mem_prefix}_weights.mem", words, pe * simd * wt.bits)


def _thresholds(layer: Layer, model: ModelWrapper, index: int, rows: int, value_range: tuple[int, int],
                rows_name: str) -> np.ndarray:  # fmt: skip
    """The thresholds constant (rows x T), clipped to the compared value's range."""
    thr = _initializer(model, layer, index, "thresholds")
    if thr.ndim != 2 or thr.shape[0] != rows:
        raise ValueError(f"{layer.where}: thresholds must have shape ({rows_name}={rows}, T), not {thr.shape}")
    return kernels.clip_thresholds(thr, *value_range)


def _threshold_names(num_t: int, search: bool, mem_prefix: str) -> dict[str, int | str]:
    """The HDL parameters that name a layer's threshold memories: THRESH_FILE (one word of PE*T
    thresholds per fold), or with ``search`` THR_SEARCH and the prefix of hw/threshold_search.sv's
    files (one per stage and lane); none without thresholds."""
    if not num_t:
        return {"THRESH_FILE": "", "THR_SEARCH": 0, "THRESH_PREFIX": ""}
    if search:
        return {"THRESH_FILE": "", "THR_SEARCH": 1, "THRESH_PREFIX": f"{mem_prefix}_thresholds"}
    return {"THRESH_FILE": f"{mem_prefix}_thresholds.mem", "THR_SEARCH": 0, "THRESH_PREFIX": ""}


def _threshold_memories(
    layer: Layer, thr: np.ndarray, mem_prefix: str, thr_w: int
) -> tuple[list[Memory], dict[str, int | str]]:
    """The clipped thresholds ``thr`` (C x T) as memories and the parameters naming them: by binary
    search when there are :data:`SEARCH_MIN_T` or more and every channel's are non-decreasing
    (memfiles.threshold_search_words), else all at once (memfiles.threshold_words)."""
    pe, num_t = int(layer.get("PE")), int(thr.shape[1])
    names = _threshold_names(num_t, num_t >= SEARCH_MIN_T and _sorted_rows(thr), mem_prefix)
    if not num_t:
        return [], names
    if names["THR_SEARCH"]:
        stages = memfiles.threshold_search_words(thr, pe, thr_w)
        files = memfiles.threshold_search_files(str(names["THRESH_PREFIX"]), stages, thr_w)
        return [Memory(name, words, thr_w) for name, words in files.items()], names
    words = memfiles.threshold_words(thr, pe, thr_w)
    return [Memory(str(names["THRESH_FILE"]), words, pe * num_t * thr_w)], names


def _file(mems: list[Memory], i: int, name: str) -> str:
    """The name of memory ``i`` (the name it will have when there are no memories: an estimate)."""
    return mems[i].name if len(mems) > i else name


def _thresholding(layer: Thresholding, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    ch, pe = int(layer.get("NumChannels")), int(layer.get("PE"))
    xt = ElemType.of(layer.get("inputDataType"))
    ot = ElemType.of(layer.get("outputDataType"))
    lo, hi = xt.value_range()
    thr_w = kernels.threshold_width(lo, hi, where=layer.where)
    num_t, mems = _threshold_bound(layer), []
    names = _threshold_names(num_t, num_t >= SEARCH_MIN_T, mem_prefix)
    if model is not None:
        thr = _thresholds(layer, model, 1, ch, (lo, hi), "NumChannels")
        num_t = int(thr.shape[1])
        mems, names = _threshold_memories(layer, thr, mem_prefix, thr_w)
    params = {
        "CH": ch, "PE": pe, "IN_W": xt.bits, "IN_SIGNED": _b(xt.signed), "IN_BIPOLAR": _b(xt.bipolar),
        "NUM_T": num_t, "THR_W": thr_w, "OUT_W": ot.bits, "OUT_OFFSET": 0 if ot.bipolar else int(layer.get("ActVal")),
        **names,
    }  # fmt: skip
    return Backend(layer, "thresholding", params, mems)


def _sliding_window(layer: SlidingWindow, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    h, w = (int(v) for v in layer.get("IFMDim"))
    xt = ElemType.of(layer.get("inputDataType"))
    (kh, kw), (sh, sw), (ph, pw) = (pair(layer.get(a)) for a in ("ConvKernelDim", "Stride", "Pad"))
    params = {
        "IFM_H": h, "IFM_W": w, "CH": int(layer.get("IFMChannels")), "SIMD": int(layer.get("SIMD")),
        "ELEM_W": xt.bits, "K": kw, "STRIDE": sw, "PAD": pw, "PAD_VALUE": int(layer.get("PadValue")),
    }  # fmt: skip
    if (kh, sh, ph) != (kw, sw, pw):  # per axis (a Conv1d: 1 x K on one row)
        params.update(K_H=kh, K_W=kw, STRIDE_H=sh, STRIDE_W=sw, PAD_H=ph, PAD_W=pw)
    if xt.bipolar and (ph or pw):
        # padding with -1 is code 0; +1 is code 1
        params["PAD_VALUE"] = 1 if int(layer.get("PadValue")) > 0 else 0
    return Backend(layer, "sliding_window", params)


def _maxpool(layer: MaxPool, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    h, w = (int(v) for v in layer.get("ImgDim"))
    xt = ElemType.of(layer.get("inputDataType"))
    if xt.bipolar:
        # max over {-1,+1} coded 0/1 is the unsigned max of the codes
        xt = ElemType(1, False, False)
    params = {
        "IFM_H": h, "IFM_W": w, "CH": int(layer.get("NumChannels")), "PE": int(layer.get("PE")),
        "ELEM_W": xt.bits, "SIGNED": _b(xt.signed), "K": pair(layer.get("PoolDim"))[1],
    }  # fmt: skip
    kh, kw = pair(layer.get("PoolDim"))
    if kh != kw:
        params.update(K_H=kh, K_W=kw)
    return Backend(layer, "maxpool", params)


def _label_select(layer: LabelSelect, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    if int(layer.get("K")) != 1:
        raise ValueError(f"{layer.where}: hw/label_select.sv selects the top 1, so K must be 1, not {layer.get('K')}")
    xt = ElemType.of(layer.get("inputDataType"))
    if xt.bipolar:
        xt = ElemType(1, False, False)
    params = {
        "NUM": int(layer.get("Labels")), "PE": int(layer.get("PE")), "ELEM_W": xt.bits, "SIGNED": _b(xt.signed),
        "OUT_W": ElemType.of(layer.get("outputDataType")).bits,
    }  # fmt: skip
    mapped = layer.map_params()
    if not mapped:
        return Backend(layer, "label_select", params)
    if mapped["VAL_W"] > 64:
        raise ValueError(
            f"{layer.where}: hw/label_select.sv compares at most 64-bit values, this map needs {mapped['VAL_W']}"
        )
    mul, off, _ = layer.class_map()
    pe = int(layer.get("PE"))
    mems = []
    for flag, key, values, width_key, what in (
        ("HAS_MUL", "MUL_FILE", mul, "MUL_W", "class_mul"), ("HAS_OFFSET", "OFFSET_FILE", off, "OFF_W", "class_offset"),
    ):  # fmt: skip
        name = ""
        if mapped[flag]:
            name = f"{mem_prefix}_{what}.mem"
            mems.append(Memory(name, memfiles.label_map_words(values, pe, mapped[width_key]), pe * mapped[width_key]))
        mapped[key] = name
    return Backend(layer, "label_select", {**params, **mapped}, mems)


def _add_streams(layer: AddStreams, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    xt = ElemType.of(layer.get("inputDataType"))
    ot = ElemType.of(layer.get("outputDataType"))
    if xt.bipolar or ot.bipolar:
        raise ValueError(f"{layer.where}: hw/add_streams.sv adds integers, not BIPOLAR values")
    params = {"PE": int(layer.get("PE")), "IN_W": xt.bits, "IN_SIGNED": _b(xt.signed), "OUT_W": ot.bits}
    return Backend(layer, "add_streams", params, in_lanes=2)


def _duplicate_streams(layer: DuplicateStreams, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    n = len(layer.node.output)
    return Backend(layer, "duplicate_streams", {"DATA_W": layer.in_width, "NUM_OUT": n}, out_lanes=n)


def _fifo(layer: FIFO, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    depth = max(2, int(layer.get("depth")))
    # OUT_SLICE: the consumer's ready meets only the slice (see hw/fifo.sv), so no path between
    # two layers crosses the chip twice, wherever the placer puts them
    params = {"DATA_W": layer.in_width, "DEPTH": depth, "USE_RAM": 1, "OUT_SLICE": 1}
    # deeper than one row of block RAMs: a chain of FIFOs one block deep each (hw/fifo_chain.sv)
    seg = memfiles.fifo_segment_depth(depth, layer.in_width)
    if seg:
        return Backend(layer, "fifo_chain", {**params, "SEG_D": seg})
    return Backend(layer, "fifo", params)


def _width_converter(layer: WidthConverter, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    i, o = layer.in_width, layer.out_width
    if max(i, o) % min(i, o):
        raise ValueError(
            f"{layer.where}: hw/width_converter.sv needs one width a multiple of the other, found {i} and {o} bits"
        )
    return Backend(layer, "width_converter", {"IN_W": i, "OUT_W": o})


def _vvau(layer: VVAU, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    ch, kk, pe, simd = int(layer.get("Channels")), layer.kk(), int(layer.get("PE")), int(layer.get("SIMD"))
    xt, wt, ot = _mac_types(layer)
    xnor = bool(layer.get("binaryXnorMode"))
    if xnor != (xt.bipolar and wt.bipolar):
        raise ValueError(
            f"{layer.where}: hw/vvau.sv computes the XNOR-popcount exactly when input and weights are bipolar, "
            f"so binaryXnorMode must be {int(not xnor)}, not {int(xnor)}"
        )
    mems = [_vvau_weights(layer, model, mem_prefix, wt)] if model is not None else []
    if not _has_thresholds(layer) and (ot.bipolar or ot.bits < 2):
        raise ValueError(f"{layer.where}: without activation the output must be an integer of 2 bits or more")
    dims = {"CH": ch, "KK": kk, "PE": pe, "SIMD": simd}
    return _mac_layer_backend(
        layer, model, mem_prefix, mems, module="vvau", dims=dims, rows=(ch, "Channels"), depth=kk, xnor=xnor
    )


def _vvau_weights(layer: VVAU, model: ModelWrapper, mem_prefix: str, wt: ElemType) -> Memory:
    ch, kk = int(layer.get("Channels")), layer.kk()
    w = np.asarray(_initializer(model, layer, 1, "weights"), dtype=np.float64)
    if w.shape != (ch, kk) or not np.array_equal(w, np.round(w)):
        raise ValueError(f"{layer.where}: weights must be integers of shape (Channels={ch}, KH*KW={kk}), not {w.shape}")
    return _weight_memory(layer, w, mem_prefix, wt, memfiles.vvau_weight_words)


def _tv_smooth(layer: TVSmooth, model: ModelWrapper | None, mem_prefix: str) -> Backend:
    h, w = (int(v) for v in layer.get("ImgDim"))
    xt = ElemType.of(layer.get("inputDataType"))
    if xt.bipolar:
        raise ValueError(f"{layer.where}: hw/tv_smooth.sv smooths integer codes, not BIPOLAR values")
    lo, hi = int(layer.get("Lo")), int(layer.get("Hi"))
    tv = layer.params()
    params = {
        "IFM_H": h, "IFM_W": w, "CH": int(layer.get("NumChannels")), "PE": int(layer.get("PE")),
        "ELEM_W": xt.bits, "SIGNED": _b(xt.signed), "LO": lo, "HI": hi, "FRAC_BITS": tv.frac_bits,
        "GAMMA_Q": tv.gamma_q, "GAMMA_FRAC_BITS": tv.gamma_frac_bits, "TABLE_FILE": f"{mem_prefix}_tv_table.mem",
    }  # fmt: skip
    words, width = memfiles.tv_table_words(hi - lo, tv)
    return Backend(layer, "tv_smooth", params, [Memory(params["TABLE_FILE"], words, width)])


_BACKENDS = {
    "MVAU": _mvau,
    "Thresholding": _thresholding,
    "SlidingWindow": _sliding_window,
    "MaxPool": _maxpool,
    "LabelSelect": _label_select,
    "AddStreams": _add_streams,
    "DuplicateStreams": _duplicate_streams,
    "FIFO": _fifo,
    "WidthConverter": _width_converter,
    "VVAU": _vvau,
    "TVSmooth": _tv_smooth,
}


def backend(layer: Layer, model: ModelWrapper | None, mem_prefix: str = "layer") -> Backend:
    """The RTL backend of ``layer``; memory files are named ``<mem_prefix>_<what>.mem``. Without a
    ``model`` (an estimate): the parameters as far as the attributes give them, no memories."""
    make = _BACKENDS.get(layer.op_type)
    if make is None:
        raise ValueError(f"{layer.where}: no RTL backend for {layer.op_type}; known: {', '.join(_BACKENDS)}")
    if model is not None:
        layer.check()
    return make(layer, model, mem_prefix)
