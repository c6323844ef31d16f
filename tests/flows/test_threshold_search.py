"""The binary-search threshold unit (hw/threshold_search.sv) on the software side: its memory layout
(flows/codegen/memfiles.py) and inverse, a search that walks those words as the RTL's stages do
against the golden kernel (flows/ir/kernels.py), the backends' choice between it and the parallel
compare (flows/codegen/backends.py) with the fall-back for unsorted thresholds, and the latency the
compiler's model gives it (flows/compile/latency.py, by hand from the module headers).

The RTL itself is checked by the thresholding / mvau / vvau bench cases marked ``-search``
(sim/case_table.py) and the stitched w5..w8 models of tests/sim/test_widths.py."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.codegen import backends, memfiles
from qnnflow.flows.compile import latency
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.layers import MVAU, Thresholding
from qonnx.core.modelwrapper import ModelWrapper


def _sorted_thresholds(rng, channels: int, num_t: int, lo: int, hi: int) -> np.ndarray:
    """Non-decreasing rows in [lo, hi + 1] with runs of equal values (a narrow range, many draws)."""
    return np.sort(rng.integers(lo, hi + 2, size=(channels, num_t)), axis=1)


# ------------------------------------------------------------------------------------------------
# the layout, word by word, and its inverse
# ------------------------------------------------------------------------------------------------
def test_search_layout_word_by_word():
    """T = 5, L = 3, PE = 2, two folds: stage k, word f*2^k + p holds threshold (2p+1)*2^(2-k) - 1
    of channel f*2 + lane: stage 0 index 3; stage 1 indices 1, 5 (5 >= T: 0); stage 2 indices 0, 2,
    4, 6 (6 >= T: 0)."""
    thr = np.array([[-3, -1, 0, 4, 7], [1, 1, 1, 2, 3], [-8, -8, -2, 5, 6], [0, 2, 2, 2, 9]])
    mem = memfiles.threshold_search_words(thr, 2, 5)
    assert memfiles.search_stages(5) == 3 and len(mem) == 3 and all(len(lanes) == 2 for lanes in mem)
    want = {0: [[3]], 1: [[1], [5]], 2: [[0], [2], [4], [6]]}  # the index of each word offset p
    for k, per_p in want.items():
        for lane in range(2):
            words = mem[k][lane]
            assert len(words) == 2 << k  # NF = 2 folds of 2^k words
            for f in range(2):
                for p, (i,) in enumerate(per_p):
                    code = thr[f * 2 + lane, i] & 0x1F if i < 5 else 0
                    assert words[f * (1 << k) + p] == code, (k, lane, f, p)
    np.testing.assert_array_equal(memfiles.thresholds_from_search_words(mem, 4, 5, 2, 5), thr)


@pytest.mark.parametrize(("channels", "pe", "num_t"), [(6, 3, 20), (4, 1, 255), (8, 8, 1), (4, 2, 16), (3, 1, 31)])
def test_search_layout_inverse_and_every_threshold_once(channels, pe, num_t):
    rng = np.random.default_rng(num_t)
    thr = _sorted_thresholds(rng, channels, num_t, -40, 40)
    mem = memfiles.threshold_search_words(thr, pe, 8)
    stages = memfiles.search_stages(num_t)
    assert stages == int(np.ceil(np.log2(num_t + 1)))
    # NF * (2^L - 1) words per lane, of which T per channel are thresholds, the rest 0
    assert sum(len(mem[k][lane]) for k in range(stages) for lane in range(pe)) == channels * ((1 << stages) - 1)
    np.testing.assert_array_equal(memfiles.thresholds_from_search_words(mem, channels, num_t, pe, 8), thr)


def test_search_layout_rejects_bad_input():
    with pytest.raises(ValueError, match="non-decreasing; channel 1 is not: \\[3, 2, 4\\]"):
        memfiles.threshold_search_words(np.array([[1, 2, 3], [3, 2, 4]]), 1, 4)
    with pytest.raises(ValueError, match="PE must divide the channel count"):
        memfiles.threshold_search_words(np.zeros((3, 4), dtype=int), 2, 4)
    with pytest.raises(ValueError, match="do not fit 4-bit signed"):
        memfiles.threshold_search_words(np.array([[1, 9]]), 1, 4)
    mem = memfiles.threshold_search_words(np.array([[1, 2, 3, 4, 5]]), 1, 4)  # L = 3
    mem[1][0][1] = 7  # index 5: beyond the 5 thresholds
    with pytest.raises(ValueError, match="stage 1 lane 0: a word beyond the 5 thresholds is not 0"):
        memfiles.thresholds_from_search_words(mem, 1, 5, 1, 4)
    with pytest.raises(ValueError, match="expected 3 stages of 1 lanes"):
        memfiles.thresholds_from_search_words(mem[:2], 1, 5, 1, 4)


def test_search_file_names_are_the_rtls():
    """memfiles names the files as hw/threshold_search.sv's $sformatf("%s_s%0d_l%0d.mem", ...) and,
    for the banks of a deep memory, $sformatf("%s_s%0d_l%0d_b%0d.mem", ...)."""
    from qnnflow.hw import rtl_path

    text = rtl_path("threshold_search").read_text()
    assert memfiles.threshold_search_file("Conv_1_thresholds", 7, 12) == "Conv_1_thresholds_s7_l12.mem"
    assert '$sformatf("%s_s%0d_l%0d.mem", PREFIX, k, l)' in text
    assert memfiles.threshold_search_file("Conv_1_thresholds", 7, 0, 3) == "Conv_1_thresholds_s7_l0_b3.mem"
    assert '$sformatf("%s_s%0d_l%0d_b%0d.mem", PREFIX, k, l, b)' in text


@pytest.mark.parametrize(
    ("depth", "width", "bank"),
    [
        (64, 25, 64),  # one block or logic: one bank
        (600, 25, 600),  # 1024 x 18 twice side by side, as few blocks as 512 x 36 in two rows
        (2048, 17, 2048),  # 2048 x 9 twice: as few as 1024 x 18 in two rows, deeper
        (3072, 9, 2048),  # 2048 x 9: two rows; the last bank 1024 words
        (8192, 25, 2048),  # 2048 x 9 three side by side (683 words a block): four banks
        (8192, 20, 8192),  # 8192 x 2, ten side by side (819 words a block, as 4096 x 4 in two rows)
    ],
)
def test_search_banks_by_hand(depth, width, bank):
    """A bank is one row of 18 Kb blocks: of the shapes 16384 x 1 .. 512 x 36 the one that holds the
    memory in the fewest blocks, of equal ones the deepest (the RTL's bank_depth)."""
    assert memfiles.search_bank_depth(depth, width) == bank


def test_search_files_split_deep_memories_into_banks_and_back():
    """NF = 24 folds of one lane, 9-bit thresholds: stage 7's 3072 words are files b0 (2048 words)
    and b1 (1024); every other stage one file; the files read back give the thresholds."""
    thr = _sorted_thresholds(np.random.default_rng(7), 24, 255, -128, 127)
    mem = memfiles.threshold_search_words(thr, 1, 9)
    files = memfiles.threshold_search_files("p", mem, 9)
    assert sorted(files) == sorted([f"p_s{k}_l0.mem" for k in range(7)] + ["p_s7_l0_b0.mem", "p_s7_l0_b1.mem"])
    assert (len(files["p_s7_l0_b0.mem"]), len(files["p_s7_l0_b1.mem"])) == (2048, 1024)
    assert files["p_s7_l0_b1.mem"] == mem[7][0][2048:]
    back = memfiles.search_memories_from_files(files, "p", 24, 255, 1, 9)
    np.testing.assert_array_equal(memfiles.thresholds_from_search_words(back, 24, 255, 1, 9), thr)
    del files["p_s7_l0_b1.mem"]
    with pytest.raises(KeyError, match="no threshold search file p_s7_l0_b1.mem"):
        memfiles.search_memories_from_files(files, "p", 24, 255, 1, 9)


# ------------------------------------------------------------------------------------------------
# the search, walked over the words as the RTL's stages walk them, against the golden kernel
# ------------------------------------------------------------------------------------------------
def _search(mem, x: np.ndarray, pe: int, num_t: int, width: int) -> np.ndarray:
    """Counts of x (frames, C) by the stages of hw/threshold_search.sv: stage k reads word
    fold*2^k + p of its lane's memory, treats an index of T or more as +infinity, appends t <= x."""
    stages = memfiles.search_stages(num_t)
    out = np.zeros(x.shape, dtype=np.int64)
    for n, c in np.ndindex(*x.shape):
        fold, lane, p = c // pe, c % pe, 0
        for k in range(stages):
            index = (2 * p + 1) * (1 << (stages - 1 - k)) - 1
            word = memfiles.decode(np.array([mem[k][lane][fold * (1 << k) + p]]), width, signed=True)[0]
            p = 2 * p + int(index < num_t and word <= x[n, c])
        out[n, c] = p
    return out


@pytest.mark.parametrize(("num_t", "in_w", "signed"), [(255, 8, True), (20, 6, False), (31, 5, True), (16, 3, False)])
def test_search_over_the_words_is_the_kernel(num_t, in_w, signed):
    """Every input value, thresholds with runs of equal values, some below and above every input."""
    rng = np.random.default_rng(in_w)
    lo, hi = kernels.value_range(in_w, signed)
    channels, pe = 6, 2
    thr = kernels.clip_thresholds(_sorted_thresholds(rng, channels, num_t, lo - 8, hi + 8), lo, hi)
    width = kernels.threshold_width(lo, hi)
    mem = memfiles.threshold_search_words(thr, pe, width)
    x = np.tile(np.arange(lo, hi + 1)[:, None], (1, channels))
    np.testing.assert_array_equal(_search(mem, x, pe, num_t, width), kernels.thresholding(x, thr, 0))


# ------------------------------------------------------------------------------------------------
# the backends' choice
# ------------------------------------------------------------------------------------------------
def _thresholding_model(thr: np.ndarray, in_type: str, out_type: str, pe: int = 2) -> tuple[Thresholding, ModelWrapper]:
    ch = thr.shape[0]
    node = Thresholding.make(
        "Thr_0", ["x", "thr"], ["y"], NumChannels=ch, PE=pe, inputDataType=in_type, outputDataType=out_type
    )
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ch])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ch])],
        initializer=[helper.make_tensor("thr", TensorProto.FLOAT, thr.shape, thr.astype(np.float32).ravel())],
    )  # fmt: skip
    return Thresholding(node), ModelWrapper(helper.make_model(graph))


def test_backend_searches_sorted_wide_thresholds():
    """31 non-decreasing thresholds (a 5-bit activation): THR_SEARCH, one file per stage and lane,
    named by THRESH_PREFIX, no THRESH_FILE; the files hold the clipped thresholds."""
    thr = _sorted_thresholds(np.random.default_rng(1), 4, 31, -140, 140)
    layer, model = _thresholding_model(thr, "INT8", "UINT5")
    be = backends.backend(layer, model, "Thr_0")
    p = be.params
    assert (p["THR_SEARCH"], p["THRESH_FILE"], p["THRESH_PREFIX"], p["NUM_T"]) == (1, "", "Thr_0_thresholds", 31)
    names = {memfiles.threshold_search_file("Thr_0_thresholds", k, lane) for k in range(5) for lane in range(2)}
    assert {m.name for m in be.memories} == names and {m.width for m in be.memories} == {p["THR_W"]}
    files = {m.name: m.words for m in be.memories}
    mem = memfiles.search_memories_from_files(files, "Thr_0_thresholds", 4, 31, 2, p["THR_W"])
    np.testing.assert_array_equal(
        memfiles.thresholds_from_search_words(mem, 4, 31, 2, p["THR_W"]), kernels.clip_thresholds(thr, -128, 127)
    )
    assert backends.threshold_search(layer, model) and backends.threshold_search(layer, None)


def test_backend_falls_back_to_the_parallel_compare():
    """Unsorted thresholds (one channel falls) or fewer than 16 (a 4-bit activation): one word per
    fold in THRESH_FILE, as before, and no error."""
    thr = _sorted_thresholds(np.random.default_rng(2), 4, 31, -140, 140)
    thr[3, 10], thr[3, 11] = thr[3, 11] + 1, thr[3, 11]  # channel 3 falls once
    layer, model = _thresholding_model(thr, "INT8", "UINT5")
    be = backends.backend(layer, model, "Thr_0")
    p = be.params
    assert (p["THR_SEARCH"], p["THRESH_FILE"], p["THRESH_PREFIX"]) == (0, "Thr_0_thresholds.mem", "")
    assert [m.name for m in be.memories] == ["Thr_0_thresholds.mem"]
    words = be.memories[0].words
    np.testing.assert_array_equal(
        memfiles.thresholds_from_words(words, 4, 31, 2, be.params["THR_W"]), kernels.clip_thresholds(thr, -128, 127)
    )
    assert not backends.threshold_search(layer, model)
    assert backends.threshold_search(layer, None)  # an estimate cannot see the order: it assumes the search
    # the order counted is the clipped one: a fall below the input's range is no fall
    low = _sorted_thresholds(np.random.default_rng(3), 4, 31, -100, 100)
    low[0, :2] = [-300, -400]
    assert backends.threshold_search(*_thresholding_model(low, "INT8", "UINT5"))
    narrow = _thresholding_model(_sorted_thresholds(np.random.default_rng(4), 4, 15, -140, 140), "INT8", "UINT4")
    assert backends.backend(*narrow, "Thr_0").params["THR_SEARCH"] == 0 and not backends.threshold_search(*narrow)


def test_mvau_backend_searches_and_falls_back():
    """An MVAU with 8-bit activations: sorted thresholds searched (its THRESH_PREFIX), unsorted ones
    compared at once; the weight memory comes first either way."""
    mh, mw = 4, 8
    rng = np.random.default_rng(5)
    w = rng.integers(-2, 2, size=(mh, mw))
    thr = _sorted_thresholds(rng, mh, 255, -60, 60)
    for falling, search in ((False, 1), (True, 0)):
        t = thr.copy()
        if falling:
            t[1] = t[1][::-1]
        node = MVAU.make(
            "Gemm_0", ["x", "w", "thr"], ["y"], MW=mw, MH=mh, PE=2, SIMD=4, inputDataType="UINT4",
            weightDataType="INT2", outputDataType="UINT8", accDataType="INT16",
        )  # fmt: skip
        inits = [
            helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.astype(np.float32).ravel()),
            helper.make_tensor("thr", TensorProto.FLOAT, t.shape, t.astype(np.float32).ravel()),
        ]
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, mh])], initializer=inits,
        )  # fmt: skip
        layer, model = MVAU(node), ModelWrapper(helper.make_model(graph))
        be = backends.backend(layer, model, "Gemm_0")
        assert be.params["THR_SEARCH"] == search and be.memories[0].name == "Gemm_0_weights.mem"
        assert len(be.memories) == (1 + 8 * 2 if search else 2)
        assert backends.threshold_search(layer, model) == bool(search)
        # the latency follows the choice: by hand from hw/mac_pipeline.sv, SIMD 4 of 2-bit signed
        # weights on 4-bit inputs, masked sums (two trees of 4 terms, PRE 1: registers after levels
        # 1 and 2, then their sums combined: 3), 1 + [1 + 3 + 1 + thresholds + 2]; thresholds: 8
        # stages of 6, or read 1 + again 1 + compares 1 + a tree of 255 terms 4
        thr_cycles = 6 * 8 if search else 1 + 1 + 1 + 4
        assert latency.layer_latency(layer, model) == 1 + (1 + 3 + 1 + thr_cycles + 2)
    assert latency.layer_latency(layer) == 1 + (1 + 3 + 1 + 48 + 2)  # without the graph: the estimate's search


# ------------------------------------------------------------------------------------------------
# latency, by hand from the headers
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("num_t", "cycles"), [(1, 6), (3, 12), (7, 18), (15, 24), (16, 30), (20, 30), (31, 30), (63, 36), (255, 48)]
)
def test_threshold_search_latency_is_the_headers(num_t, cycles):
    # hw/threshold_search.sv: "NUM_T = 1: 6; 2..3: 12; 4..7: 18; 8..15: 24; 16..31: 30; 32..63: 36; ...; 128..255: 48"
    assert latency.threshold_search_latency(num_t) == cycles


@pytest.mark.parametrize(("act", "cycles"), [("UINT4", 7), ("UINT5", 33), ("UINT6", 39), ("UINT7", 45), ("UINT8", 51)])
def test_thresholding_latency_with_search_is_the_headers(act, cycles):
    # hw/thresholding.sv: parallel 7 for 5..16 thresholds; "With THR_SEARCH: 33 for 16..31
    # thresholds, 39 for 32..63, 45 for 64..127, 51 for 128..255"
    node = Thresholding.make("t", ["x", "thr"], ["y"], NumChannels=4, PE=2, inputDataType="INT8", outputDataType=act)
    assert latency.layer_latency(Thresholding(node)) == cycles


def test_mac_latency_with_search_by_hand():
    """hw/mac_pipeline.sv, SIMD 1: input 1 + tree 1 + accumulate 1 + search 6 * clog2(T + 1) + queue 2."""
    assert latency.mac_pipeline_latency(1, 255, search=True) == 1 + 1 + 1 + 48 + 2
    assert latency.mac_pipeline_latency(1, 20, search=True) == 1 + 1 + 1 + 30 + 2
    assert latency.mac_pipeline_latency(1, 0, search=True) == latency.mac_pipeline_latency(1, 0) == 5
