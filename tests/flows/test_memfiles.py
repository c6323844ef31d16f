"""qnnflow.flows.codegen.memfiles: the $readmemh word layout, checked bit by bit with explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qnnflow.flows.codegen import memfiles


def test_pack_element_zero_in_lsbs_twos_complement():
    assert memfiles.pack(np.array([[1, -1, 0, -2]]), 2, signed=True) == [0b10_00_11_01]
    assert memfiles.pack(np.array([[-1, 1, 1]]), 1, bipolar=True) == [0b110]
    np.testing.assert_array_equal(memfiles.unpack([0b10_00_11_01], 4, 2, signed=True), [[1, -1, 0, -2]])


def test_encode_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError, match="do not fit 3-bit signed"):
        memfiles.encode(np.array([4]), 3, signed=True)
    with pytest.raises(ValueError, match="bipolar"):
        memfiles.encode(np.array([0]), 1, bipolar=True)


@pytest.mark.parametrize("pe, simd", [(1, 1), (2, 3), (4, 6)])
def test_mvau_weight_words_layout(pe, simd):
    mh, mw, width = 4, 6, 3
    w = np.random.default_rng(0).integers(-4, 4, size=(mh, mw))
    words = memfiles.mvau_weight_words(w, pe, simd, width, signed=True)
    nf, sf = mh // pe, mw // simd
    assert len(words) == nf * sf
    for nf_i in range(nf):
        for sf_i in range(sf):
            word = words[nf_i * sf + sf_i]
            for p in range(pe):
                for s in range(simd):
                    code = (word >> ((p * simd + s) * width)) & 0b111
                    assert code == (int(w[nf_i * pe + p, sf_i * simd + s]) & 0b111)
    np.testing.assert_array_equal(memfiles.mvau_weights_from_words(words, mh, mw, pe, simd, width, signed=True), w)


def test_bipolar_weights_are_one_bit_zero_meaning_minus_one():
    w = np.array([[1, -1], [-1, -1]])
    assert memfiles.mvau_weight_words(w, 2, 2, 1, bipolar=True) == [0b0001]


def test_threshold_words_layout_and_inverse():
    thr = np.array([[-3, 0, 5], [1, 2, 3], [-8, -8, 7], [0, 0, 0]])
    words = memfiles.threshold_words(thr, 2, 4)
    assert len(words) == 2
    for nf in range(2):
        for p in range(2):
            for t in range(3):
                assert (words[nf] >> ((p * 3 + t) * 4)) & 0xF == thr[nf * 2 + p, t] & 0xF
    np.testing.assert_array_equal(memfiles.thresholds_from_words(words, 4, 3, 2, 4), thr)


def test_fold_must_divide():
    with pytest.raises(ValueError, match="SIMD must divide MW"):
        memfiles.mvau_weight_words(np.zeros((4, 6), dtype=int), 2, 4, 2, signed=True)


def test_memh_roundtrip(tmp_path):
    path = memfiles.write_memh(tmp_path / "w.mem", [0x1, 0xABC, 0], 12)
    assert path.read_text() == "001\nabc\n000\n"
    assert memfiles.read_memh(path) == [1, 0xABC, 0]
    with pytest.raises(ValueError, match="does not fit 10 bits"):
        memfiles.write_memh(tmp_path / "x.mem", [1 << 10], 10)


# (depth, width) of weight memories: the digits CNN's conv 2 (144 x 64), CNV's deepest layer at
# FINN's folding (18,432 x 32), TFC's first layer (64 x 1,568), small ones that stay in LUTs, and
# CNV-w1a1's conv 2 (36 x 1,024: LUTs would cost less, but its address would reach 4,096 LUT4s)
@pytest.mark.parametrize(
    "depth, width", [(144, 64), (18432, 32), (64, 1568), (64, 32), (16, 16), (300, 9), (36, 1024), (36, 512)]
)
def test_weight_banks_exactly_where_the_memory_model_puts_weights_in_block_ram(depth, width):
    from qnnflow.flows.compile.resources_memory import memory

    bank = memfiles.weight_bank_depth(depth, width)
    by_cost = memory(depth, width, "ecp5", rom=True).kind == "bram"
    # an independent count of the LUT4s a LUT ROM's address reaches: a 16-word LUT per bit and per
    # 16 words of the depth rounded up to a power of two
    loads = width * max(1, 2 ** math.ceil(math.log2(depth)) // 16)
    assert (bank > 0) == (by_cost or loads > memfiles.ROM_ADDRESS_LOADS_MAX)
    if (depth, width) == (36, 1024):  # the case the address rule is for
        assert bank and not by_cost
    if bank:
        assert bank >= 2 and bank & (bank - 1) == 0  # hw/mvau.sv: a power of two
        # never more block RAMs than one memory of depth x width would take in its best shape
        shapes = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
        best = min(-(-depth // d) * -(-width // w) for d, w in shapes)
        per_bank = min(-(-min(bank, depth) // d) * -(-width // w) for d, w in shapes)
        assert -(-depth // bank) * per_bank == best or bank >= depth
        # the resource model counts the blocks of banked weights, also where LUTs would cost less
        assert memory(depth, width, "ecp5", rom=True, block=True).brams == best


def test_weight_bank_files_split_by_address_the_last_holding_the_rest():
    words = list(range(21))
    files = memfiles.weight_bank_files("w_b%0d.mem", words, 8)
    assert list(files) == ["w_b0.mem", "w_b1.mem", "w_b2.mem"]
    assert files["w_b0.mem"] == list(range(8)) and files["w_b2.mem"] == [16, 17, 18, 19, 20]
    assert sum(files.values(), []) == words
    with pytest.raises(ValueError, match="at least one word"):
        memfiles.weight_bank_files("w_b%0d.mem", words, 0)
