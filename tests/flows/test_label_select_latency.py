"""The LabelSelect latency of the beat model (flows/compile/latency.py) against hw/label_select.sv's
header formula, by hand: 1 (input) + [constants' second register] + [product] + [offset sum] +
clog2(PE) (a register after every level of the compare tree) + 4 (items of two beats: halves,
item best, compare, update) + 2 (queue)."""

from __future__ import annotations

import pytest
from qnnflow.flows.compile import latency


@pytest.mark.parametrize(
    ("pe", "tree"), [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (10, 4), (16, 4), (17, 5), (64, 6)]
)
def test_plain_label_select_latency_is_the_headers(pe, tree):
    assert latency.label_select_latency({"NUM": 64, "PE": pe}) == 7 + tree


@pytest.mark.parametrize(
    ("has_mul", "has_off", "shift", "extra"), [(0, 0, 3, 0), (1, 0, 0, 2), (0, 1, 2, 2), (1, 1, 0, 3)]
)
def test_map_stages_add_to_the_label_select_latency(has_mul, has_off, shift, extra):
    p = {"NUM": 10, "PE": 10, "HAS_MUL": has_mul, "HAS_OFFSET": has_off, "SHIFT": shift}
    assert latency.label_select_latency(p) == 7 + 4 + extra
