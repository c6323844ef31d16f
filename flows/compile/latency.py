"""Analysis: the latency of one frame through the dataflow graph, beat by beat.

Each hardware layer is modelled the way its ``hw/`` module's header describes it: a unit that
issues at most one work item per cycle (an MVAU slice, a sliding-window beat, a pooled pixel),
an item waiting until the input beat it needs has arrived, and some items producing an output
beat a fixed pipeline latency later (the ``Latency`` line of the header, as a function of the
module's parameters). Given the cycle at which every input beat of frame 0 arrives, a layer's
schedule gives the cycle at which every output beat leaves; the graph is walked in order from the
accelerator's input (one beat per cycle from cycle 0) to its output. The frame's latency is the
cycle of the last output beat plus one, the number :func:`qnnflow.sim.accel` measures in the
stitched simulation (first input beat to last output beat, inclusive).

Backpressure is not modelled: the FIFOs between layers are sized (by simulation) so that a
faster producer is never held back in a way that delays the slowest layer, and frame 0 starts
with every pipeline empty. Each schedule is vectorized: "item k issues no earlier than the item
before it plus one cycle and no earlier than its input" is ``S = k + cummax(ready - k)``.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.codegen.backends import backend, threshold_search
from qnnflow.flows.codegen.memfiles import fifo_chain_shape
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
    get_layer,
    hw_nodes,
    pair,
)
from qonnx.core.modelwrapper import ModelWrapper

__all__ = ["adder_tree_latency", "frame_latency", "label_select_latency", "layer_latency", "schedule"]

NEVER = np.iinfo(np.int64).min // 4  # "needs no input beat"


# -- the pipeline latencies stated in the module headers --------------------------------------------
def adder_tree_latency(n: int, pre: int, lps: int = 2) -> int:
    """hw/adder_tree.sv: 1 when N = 1, else the levels k in 1..LEVELS with (k + PRE) % LPS == 0 or k = LEVELS."""
    levels = (n - 1).bit_length() if n > 1 else 0
    if levels == 0:
        return 1
    return sum(1 for k in range(1, levels + 1) if k == levels or (k + pre) % lps == 0)


def threshold_count_latency(num_t: int) -> int:
    """hw/threshold_count.sv: the registered compares, then the adder tree over NUM_T one-bit terms."""
    return 1 + adder_tree_latency(num_t, 0)


def threshold_search_latency(num_t: int) -> int:
    """hw/threshold_search.sv: six registers (address, read, read again twice, compare, the bank's
    result) per result bit, clog2(NUM_T + 1) bits."""
    return 6 * num_t.bit_length()


def product_terms(params: dict) -> int:
    """hw/mac_pipeline.sv's K: adder-tree terms per product. A shift-and-add product of three or
    more partial products (neither operand bipolar, not both wider than 4 bits) gives its partial
    products to the tree, one per bit of the narrower operand; every other product is one term."""
    if int(params["IN_BIPOLAR"]) or int(params["W_BIPOLAR"]) or uses_multipliers(params):
        return 1
    narrow = min(int(params["IN_W"]), int(params["W_W"]))
    return narrow if narrow > 2 else 1


def uses_multipliers(params: dict) -> bool:
    """hw/mac_pipeline.sv's USE_MUL: neither operand bipolar and both wider than 4 bits."""
    return (not int(params["IN_BIPOLAR"]) and not int(params["W_BIPOLAR"])
            and int(params["IN_W"]) > 4 and int(params["W_W"]) > 4)  # fmt: skip


def bank_delay(params: dict) -> int:
    """hw/mvau.sv's W_DELAY: the cycles banked weights (W_BANK_D > 0) add to the read: 1, one more
    with more than one fold (the input buffer's bypass registered, X_BYP_REG), and one per 4:1
    level of the banks' selection but the last (more than four banks)."""
    depth = int(params.get("W_BANK_D", 0))
    if depth <= 0:
        return 0
    nf = int(params["MH"]) // int(params["PE"])
    words = nf * (int(params["MW"]) // int(params["SIMD"]))
    banks = -(-words // depth)
    levels = ((banks - 1).bit_length() + 1) // 2 if banks > 1 else 0  # ceil(clog2(banks) / 2)
    return 1 + int(nf > 1) + max(levels - 1, 0)


def masked_sums(params: dict, per_lane_x: bool = False) -> bool:
    """hw/mac_pipeline.sv's MSUM: an MVAU (``per_lane_x`` False; a VVAU's lanes read inputs of their
    own) whose products are masked inputs summed by two trees: bipolar weights on a non-bipolar
    input, or 2-bit signed weights on an input of 3 bits or more (without multipliers)."""
    if per_lane_x or int(params["IN_BIPOLAR"]):
        return False
    if int(params["W_BIPOLAR"]):
        return True
    return (not uses_multipliers(params) and bool(int(params.get("W_SIGNED", 1)))
            and int(params["W_W"]) == 2 and int(params["IN_W"]) > 2)  # fmt: skip


def mac_pipeline_latency(
    simd: int, num_t: int, use_mul: bool = False, terms: int = 1, search: bool = False, msum: bool = False,
    thr_bram: bool = False,
) -> int:
    """hw/mac_pipeline.sv's LATENCY: input registers, the product tree over ``simd * terms`` terms
    (with multipliers: operands registered again, products registered, then the tree; with masked
    sums, ``msum``, the two trees' sums combined in one more stage), accumulation, [thresholds],
    the output queue's 2. ``thr_bram``: the thresholds in block RAM (THR_BRAM), read through a
    second register as more than 3 thresholds are."""
    # (after multipliers a register after every adder level: TREE_LPS = 1)
    t_mac = 2 + adder_tree_latency(simd, 0, lps=1) if use_mul else adder_tree_latency(simd * terms, 1) + int(msum)
    # thresholds: the read registered, [more than 3 or in block RAM: registered again (THR_REG2)], the
    # compares, their tree; or (``search``, THR_SEARCH) the binary search from the accumulator's register
    if num_t > 0 and search:
        thr = threshold_search_latency(num_t)
    else:
        thr = 2 + (1 if num_t > 3 or thr_bram else 0) + adder_tree_latency(num_t, 0) if num_t > 0 else 0
    return 1 + t_mac + 1 + thr + 2


def label_select_latency(params: dict) -> int:
    """hw/label_select.sv's LATENCY: the input register, [the map's constants registered again,
    the product, the offset's sum], the compare tree over PE values (a register after each of its
    clog2(PE) levels), the items of two beats and the best so far (4), the output queue's 2."""
    pe = int(params["PE"])
    has_mul, has_off = bool(int(params.get("HAS_MUL", 0))), bool(int(params.get("HAS_OFFSET", 0)))
    t_map = int(has_mul or has_off) + int(has_mul) + int(has_off)
    return 1 + t_map + (pe - 1).bit_length() + 4 + 2


def layer_latency(layer: Layer, model: ModelWrapper | None = None) -> int:
    """Cycles from the transfer of the input beat an output beat waits for (for a MAC unit: the
    issue of a fold's last slice) to the first cycle that output beat is valid, queue empty.
    ``model``: the graph holding the layer's thresholds, which decide whether they are searched
    (backends.threshold_search); without it the threshold count alone decides, as in the estimates."""
    p = backend(layer, None).params
    search = threshold_search(layer, model) if "THR_SEARCH" in p else False
    if isinstance(layer, MVAU | VVAU):
        # the issued slice and its weights are registered (x_reg / w_ram) before mac_pipeline;
        # weights read through banks (hw/mvau.sv W_BANK_D) bank_delay() cycles later, the slice with them
        nt, banked = int(p["NUM_T"]), bank_delay(p) if isinstance(layer, MVAU) else 0
        msum = masked_sums(p, per_lane_x=isinstance(layer, VVAU))
        mac = mac_pipeline_latency(
            int(p["SIMD"]), nt, uses_multipliers(p), product_terms(p), search, msum, bool(int(p.get("THR_BRAM", 0)))
        )
        return 1 + banked + mac
    if isinstance(layer, Thresholding):
        if search:  # the beat and its fold registered, the search, the queue
            return 1 + threshold_search_latency(int(p["NUM_T"])) + 2
        return 2 + threshold_count_latency(int(p["NUM_T"])) + 2
    if isinstance(layer, SlidingWindow):
        return 6
    if isinstance(layer, MaxPool):
        return 5
    if isinstance(layer, TVSmooth):
        return 7  # from a fold's window position 7 (the input register, four stages, the queue's 2)
    if isinstance(layer, FIFO):  # hw/fifo.sv; hw/fifo_chain.sv: its FIFOs' latencies, the slice after the last
        nseg, _ = fifo_chain_shape(int(p["DEPTH"]), int(p.get("SEG_D", 0)))
        return nseg * (3 if int(p.get("OUT_REG", p.get("USE_RAM", 1))) else 2) + int(p.get("OUT_SLICE", 0))
    if isinstance(layer, LabelSelect):
        return label_select_latency(p)
    if isinstance(layer, AddStreams | DuplicateStreams | WidthConverter):
        return 1
    raise NotImplementedError(f"{layer.where}: no latency model")


# -- schedules ------------------------------------------------------------------------------------------
def _issue(ready: np.ndarray) -> np.ndarray:
    """Issue cycles of items, one per cycle at most, item k not before ``ready[k]``."""
    k = np.arange(ready.size, dtype=np.int64)
    return k + np.maximum.accumulate(ready - k) if ready.size else ready


def _flow(arrive: np.ndarray, latency: int) -> np.ndarray:
    """A beat in, a beat out, one per cycle: the output of each beat ``latency`` cycles after it is taken."""
    return _issue(arrive) + latency


def _mac(arrive: np.ndarray, vectors: int, nf: int, sf: int, latency: int, buffered: bool) -> np.ndarray:
    """An MVAU (``buffered``: the first fold takes the SF input beats of a vector, the other folds
    read them back; items in (vector, fold, slice) order) or a VVAU (every item takes an input beat,
    items in (window, slice, fold) order, the NF outputs during the window's last slice)."""
    if buffered:
        v, f, s = np.meshgrid(np.arange(vectors), np.arange(nf), np.arange(sf), indexing="ij")
        need = np.where(f == 0, v * sf + s, -1).ravel()
        emit = (s == sf - 1).ravel()
    else:
        v, s, f = np.meshgrid(np.arange(vectors), np.arange(sf), np.arange(nf), indexing="ij")
        need = np.arange(v.size)
        emit = (s == sf - 1).ravel()
    ready = np.where(need >= 0, arrive[np.maximum(need, 0)], NEVER)
    return _issue(ready)[emit] + latency


def _sliding_window(arrive: np.ndarray, layer: SlidingWindow, latency: int) -> np.ndarray:
    """Output rows of windows are read once every input row they cover has been written: two cycles
    after the write of the row's last beat at the earliest (the reader's `go` register tests the
    complete-row count register), one when an output row has at most two beats (`go` is then a
    combinational test of that count)."""
    c, simd = int(layer.get("IFMChannels")), int(layer.get("SIMD"))
    h, w = (int(v) for v in layer.get("IFMDim"))
    oh, ow = (int(v) for v in layer.get("OFMDim"))
    kh, kw = pair(layer.get("ConvKernelDim"))
    sh, _ = pair(layer.get("Stride"))
    ph, _ = pair(layer.get("Pad"))
    cf = c // simd
    row_beats = w * cf
    last_row = np.minimum(np.arange(oh) * sh - ph + kh - 1, h - 1)
    wait = 2 if ow * kh * kw * cf > 2 else 1  # hw/sliding_window.sv g_go_reg / g_go_comb
    row_ready = arrive[(last_row + 1) * row_beats - 1] + wait
    ready = np.repeat(row_ready, ow * kh * kw * cf)
    return _issue(ready) + latency


def _maxpool(arrive: np.ndarray, layer: MaxPool, latency: int) -> np.ndarray:
    h, w = (int(v) for v in layer.get("ImgDim"))
    kh, kw = pair(layer.get("PoolDim"))
    cf = int(layer.get("NumChannels")) // int(layer.get("PE"))
    taken = _issue(arrive).reshape(h, w, cf)
    oh, ow = h // kh, w // kw
    # a window's result follows its last (bottom-right) beat
    last = taken[kh - 1 : oh * kh : kh, kw - 1 : ow * kw : kw, :]
    return last.ravel() + latency


def _width_converter(arrive: np.ndarray, layer: WidthConverter, latency: int) -> np.ndarray:
    i, o = int(layer.get("inWidth")), int(layer.get("outWidth"))
    taken = _issue(arrive)
    if o >= i:  # widening (or a register slice): an output word after its last input beat
        r = o // i
        return taken[r - 1 :: r] + latency
    r = i // o  # narrowing: R output beats per input beat, one per cycle
    return _issue(np.repeat(taken, r) + latency)


def schedule(layer: Layer, arrive: list[np.ndarray], model: ModelWrapper | None = None) -> list[np.ndarray]:
    """Output beat cycles of ``layer`` (one array per output stream) from its input beat cycles
    (``model``: the graph of the layer, as :func:`layer_latency` takes it)."""
    lat = layer_latency(layer, model)
    a = arrive[0]
    if isinstance(layer, MVAU):
        mh, mw, pe, simd = (int(layer.get(k)) for k in ("MH", "MW", "PE", "SIMD"))
        return [_mac(a, layer.vectors(), mh // pe, mw // simd, lat, buffered=True)]
    if isinstance(layer, VVAU):
        ch, pe, simd = (int(layer.get(k)) for k in ("Channels", "PE", "SIMD"))
        return [_mac(a, layer.vectors(), ch // pe, layer.kk() // simd, lat, buffered=False)]
    if isinstance(layer, SlidingWindow):
        return [_sliding_window(a, layer, lat)]
    if isinstance(layer, MaxPool):
        return [_maxpool(a, layer, lat)]
    if isinstance(layer, WidthConverter):
        return [_width_converter(a, layer, lat)]
    if isinstance(layer, TVSmooth):
        # 9*CF window beats per pixel, one per cycle; fold cf is complete with its position-7 beat
        cf = int(layer.get("NumChannels")) // int(layer.get("PE"))
        taken = _issue(a).reshape(-1, 9, cf)
        return [taken[:, 7, :].ravel() + lat]
    if isinstance(layer, LabelSelect):
        frames = a.size // (int(layer.get("Labels")) // int(layer.get("PE")))
        done = _issue(a).reshape(frames, -1)[:, -1] + lat
        return [done]
    if isinstance(layer, AddStreams):
        return [_flow(np.maximum(a, arrive[1]), lat)]
    if isinstance(layer, DuplicateStreams):
        out = _flow(a, lat)
        return [out] * len(layer.node.output)
    if isinstance(layer, Thresholding | FIFO):
        return [_flow(a, lat)]
    raise NotImplementedError(f"{layer.where}: no schedule")


def frame_latency(model: ModelWrapper) -> int:
    """Cycles from frame 0's first input beat to its last output beat, inclusive, by the beat model."""
    nodes = hw_nodes(model)
    if not nodes:
        return 0
    times: dict[str, np.ndarray] = {}
    first = get_layer(nodes[0])
    times[nodes[0].input[0]] = np.arange(_in_beats(first), dtype=np.int64)
    hw = {id(n) for n in nodes}
    for node in model.graph.node:
        if id(node) not in hw:
            # a reshape between layers (the stream's order is already the new shape's): no cycles
            src = next((t for t in node.input if t in times), None)
            if src is not None:
                for name in node.output:
                    times[name] = times[src]
            continue
        layer = get_layer(node)
        streams = [node.input[0]] + ([node.input[1]] if isinstance(layer, AddStreams) else [])
        missing = [t for t in streams if t not in times]
        if missing:
            raise ValueError(f"{layer.where}: input stream {missing[0]} comes from no earlier hardware layer")
        for name, out in zip(node.output, schedule(layer, [times[t] for t in streams], model), strict=False):
            times[name] = out
    last = nodes[-1].output[0]
    return int(times[last].max()) + 1


def _in_beats(layer: Layer) -> int:
    """Input beats of one frame of the first layer."""
    if isinstance(layer, MVAU):
        return layer.vectors() * int(layer.get("MW")) // int(layer.get("SIMD"))
    if isinstance(layer, SlidingWindow):
        h, w = (int(v) for v in layer.get("IFMDim"))
        return h * w * int(layer.get("IFMChannels")) // int(layer.get("SIMD"))
    if isinstance(layer, MaxPool):
        h, w = (int(v) for v in layer.get("ImgDim"))
        return h * w * int(layer.get("NumChannels")) // int(layer.get("PE"))
    if isinstance(layer, VVAU):
        return layer.exp_cycles()
    if isinstance(layer, FIFO):
        return int(layer.get("beats"))
    if isinstance(layer, WidthConverter):
        e, n = int(layer.get("elemWidth")), int(layer.get("elements"))
        return n * e // int(layer.get("inWidth"))
    if isinstance(layer, LabelSelect):
        return int(layer.get("Labels")) // int(layer.get("PE"))
    return int(layer.get("NumChannels")) // int(layer.get("PE")) * layer.vectors()
