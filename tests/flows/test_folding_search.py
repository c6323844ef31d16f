"""The resource-aware folding search (flows/compile/folding_search.py) against its exhaustive reference,
the reference against a brute force through the stream passes, FINN's greedy rule, and step_fold.

Budgets are checked independently: the stream passes on a copy of the graph, then ``totals``."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile import folding_search as fs
from qnnflow.flows.compile.estimates import totals
from qnnflow.flows.compile.folding_table import PricedTable, copy_model
from qnnflow.flows.compile.fuzz import random_case
from qnnflow.flows.compile.steps import STEPS, CompileOptions, step_fold
from qnnflow.flows.ir.layers import MVAU, get_layer, hw_nodes
from qnnflow.flows.passes.streams import InsertFIFOs, InsertWidthConverters
from qnnflow.flows.passes.tidy import fixed_point
from qonnx.core.modelwrapper import ModelWrapper

FAMILY = "ecp5"
# fuzz graphs lowered to hardware layers: chains of MVAUs, a sliding window and max pool, label
# selection, and (15) a residual block (DuplicateStreams / AddStreams: a stream graph, not a chain)
SEEDS = (2, 4, 11, 15, 18)


def _hw(seed: int) -> ModelWrapper:
    """Fuzz case ``seed`` through the compile steps before ``fold`` (every layer at PE = SIMD = 1)."""
    model, opts = random_case(seed).model, CompileOptions()
    for name, step in STEPS:
        if name == "fold":
            return model
        model = step(model, opts)
    raise AssertionError("no fold step")


@pytest.fixture(scope="module")
def hw_models() -> dict[int, ModelWrapper]:
    return {seed: _hw(seed) for seed in SEEDS}


def _single_mvau(mw: int = 256, mh: int = 64) -> ModelWrapper:
    """One MVAU and nothing else: no streams, so the layers-only figures are the whole model's."""
    node = MVAU.make(
        "MatMul_0", ["x", "W"], ["y"], MW=mw, MH=mh, inputDataType="UINT4", weightDataType="INT4",
        outputDataType="INT16", accDataType="INT16", noActivation=1,
    )  # fmt: skip
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, mh])],
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g))


def _as_compiled(model: ModelWrapper) -> dict[str, int]:
    """Totals of ``model`` after the stream passes, computed here (not through folding_table)."""
    m = fixed_point(copy_model(model), [InsertWidthConverters()])
    return totals(fixed_point(m, [InsertFIFOs(2)]), FAMILY)


def _ii(model: ModelWrapper) -> int:
    return max(get_layer(n).exp_cycles() for n in hw_nodes(model))


def _objective(record: fs.FoldingRecord) -> int:
    return record.ii_cycles if record.objective == fs.FASTEST else record.totals["LUT4"]


def _cases(model: ModelWrapper) -> list[dict]:
    """Budgets between the smallest design and four times it, and targets across the reachable IIs."""
    _, small = fs.fold_search_for(model, FAMILY, target_cycles=max(fs.candidate_iis(PricedTable(model, FAMILY))))
    luts, brams = small.totals["LUT4"], small.totals["DP16KD"]
    iis = fs.candidate_iis(PricedTable(model, FAMILY))
    return [
        *({"lut_budget": int(luts * f)} for f in (1.1, 1.6, 4)),
        {"lut_budget": 4 * luts, "bram_budget": brams // 2},
        *({"target_cycles": iis[len(iis) // q]} for q in (2, 5)),
        {"target_cycles": iis[len(iis) // 3], "bram_budget": brams // 2},
    ]


def test_table_totals_are_the_stream_passes_totals(hw_models):
    """The per-layer + per-stream decomposition equals the estimate of the graph with its width
    converters and FIFOs inserted, on random foldings; an unbuildable stream is one the width
    converter's backend refuses."""
    rng = np.random.default_rng(0)
    broken_seen = 0
    for seed, model in hw_models.items():
        model = copy_model(model)
        table = PricedTable(model, FAMILY)
        for _ in range(6):
            pick = [int(rng.integers(len(opts))) for opts in table.choices]
            table.apply(pick)
            luts, brams, broken = table.totals(pick)
            if broken:
                broken_seen += 1
                with pytest.raises(ValueError, match="needs one width a multiple of the other"):
                    _as_compiled(model)
                continue
            t = _as_compiled(model)
            assert (t["LUT4"], t["DP16KD"]) == (luts, brams), (seed, pick)
            assert table.ii(pick) == _ii(model)
    assert broken_seen  # the random foldings include unbuildable ones


@pytest.mark.parametrize("seed", [4, 18])
def test_exhaustive_is_the_brute_force_optimum(seed, hw_models):
    """Every combination folded into the graph and estimated through the stream passes: the best
    value equals exhaustive's, pruned and unpruned."""
    model = copy_model(hw_models[seed])
    table = PricedTable(model, FAMILY)
    scored = []
    for pick in itertools.product(*(range(len(o)) for o in table.choices)):
        table.apply(list(pick))
        try:
            t = _as_compiled(model)
        except ValueError:  # a stream no width converter joins
            continue
        scored.append((_ii(model), t["LUT4"], t["DP16KD"]))
    for case in _cases(hw_models[seed]):
        fits = [s for s in scored if s[1] <= case.get("lut_budget", 1e12) and s[2] <= case.get("bram_budget", 1e12)]
        if "target_cycles" in case:
            want = min(s[1] for s in fits if s[0] <= case["target_cycles"])
        else:
            want = min(s[0] for s in fits)
        for prune in (True, False):
            _, rec = fs.exhaustive(copy_model(model), FAMILY, prune=prune, **case)
            assert _objective(rec) == want, (case, prune)


def _both(model: ModelWrapper, case: dict) -> tuple[ModelWrapper, fs.FoldingRecord, fs.FoldingRecord] | None:
    """The search's and exhaustive's results on ``case``; None when both find that nothing fits."""
    try:
        _, best = fs.exhaustive(copy_model(model), FAMILY, **case)
    except ValueError as err:
        assert str(err).startswith("no combination of foldings fits")
        with pytest.raises(ValueError, match="^no folding .*fits the budget"):
            fs.fold_search_for(model, FAMILY, **case)
        return None
    folded, found = fs.fold_search_for(model, FAMILY, **case)
    return folded, found, best


def test_search_is_exact_on_a_model_without_streams():
    """One layer: the per-layer choice (and the block-RAM knapsack) is the whole problem."""
    model = _single_mvau()
    feasible = 0
    for case in [*_cases(model), {"lut_budget": 3000, "bram_budget": 4}, {"target_cycles": 512, "bram_budget": 1}]:
        both = _both(model, case)
        if both:
            _, found, best = both
            assert (found.ii_cycles, found.totals) == (best.ii_cycles, best.totals), case
            feasible += 1
    assert feasible >= 6


def test_search_within_5_percent_of_exhaustive_and_within_budget(hw_models):
    for seed, model in hw_models.items():
        for case in _cases(model):
            both = _both(model, case)
            if both is None:
                continue
            folded, found, best = both
            assert _objective(found) <= 1.05 * _objective(best), (seed, case)
            t = _as_compiled(folded)  # recomputed independently
            assert t == found.totals
            assert t["LUT4"] <= case.get("lut_budget", t["LUT4"]) and t["DP16KD"] <= case.get(
                "bram_budget", t["DP16KD"]
            )
            assert _ii(folded) == found.ii_cycles <= case.get("target_cycles", found.ii_cycles)
            assert found.folding == {n.name: get_layer(n).folding() for n in hw_nodes(folded) if get_layer(n).FOLDS}


def test_impossible_budget_names_what_the_smallest_design_needs(hw_models):
    model = hw_models[11]
    _, small = fs.exhaustive(copy_model(model), FAMILY, target_cycles=max(fs.candidate_iis(PricedTable(model, FAMILY))))
    with pytest.raises(ValueError) as err:
        fs.search(copy_model(model), FAMILY, lut_budget=100)
    msg = str(err.value)
    head = "no folding fits the budget of LUT4 <= 100 on ecp5: the smallest design found (fewest LUTs) needs "
    assert msg.startswith(head), msg
    needs = int(re.search(r"needs ([\d,]+) LUT4", msg).group(1).replace(",", ""))
    # a real design, within 1 % of the true fewest-LUT design (the search's descent is a heuristic)
    assert small.totals["LUT4"] <= needs <= 1.01 * small.totals["LUT4"]
    with pytest.raises(ValueError) as err:
        fs.search(copy_model(model), FAMILY, target_cycles=300, lut_budget=100, bram_budget=0)
    assert re.match(
        r"no folding of at most 300 cycles per frame fits the budget of LUT4 <= 100 and DP16KD <= 0 on ecp5: "
        r"the smallest design found \(fewest LUTs\) needs [\d,]+ LUT4 and \d+ DP16KD at II [\d,]+ cycles; "
        r"(with at most 0 block RAMs, the smallest design found|the design with the fewest block RAMs found) needs ",
        str(err.value),
    ), str(err.value)
    with pytest.raises(ValueError, match=r"not reachable: .* needs at least \d+ cycles even fully parallel"):
        fs.search(copy_model(model), FAMILY, target_cycles=1)
    with pytest.raises(ValueError, match="give a LUT or block-RAM budget, or a throughput target"):
        fs.search(copy_model(model), FAMILY)
    with pytest.raises(ValueError, match="needs the clock"):
        fs.search(copy_model(model), FAMILY, target_fps=1000.0)


def test_fps_target_is_cycles_at_the_clock(hw_models):
    model = hw_models[2]
    _, by_fps = fs.fold_search_for(model, FAMILY, target_fps=50e6 / 100, clock_mhz=50.0)
    _, by_cycles = fs.fold_search_for(model, FAMILY, target_cycles=100)
    assert by_fps == by_cycles and by_fps.objective == fs.FEWEST_LUTS


def test_fold_search_for_leaves_its_model_alone(hw_models):
    model = hw_models[2]
    before = model.model.SerializeToString()
    folded, _ = fs.fold_search_for(model, FAMILY, lut_budget=3000)
    assert model.model.SerializeToString() == before and folded is not model
    streamed = fixed_point(copy_model(folded), [InsertFIFOs(2)])
    with pytest.raises(ValueError, match=r"already has its streams \(FIFO_0, .*before the streams step"):
        fs.fold_search_for(streamed, FAMILY, lut_budget=3000)


def test_finn_greedy_raises_simd_before_pe_until_the_target():
    model = _single_mvau(mw=64, mh=64)  # INT4 weights: SIMD x 4 bits <= 36 allows SIMD 8 of 64's divisors
    lay = get_layer(hw_nodes(fs.finn_greedy(model, 1024))[0])
    assert lay.folding() == {"PE": 1, "SIMD": 4}  # 64 * 64 / 4 = 1024: SIMD alone reaches it
    lay = get_layer(hw_nodes(fs.finn_greedy(model, 64))[0])
    assert lay.folding() == {"PE": 8, "SIMD": 8} and lay.exp_cycles() == 64  # SIMD at its width cap, then PE
    lay = get_layer(hw_nodes(fs.finn_greedy(model, 100, mvau_wwidth_max=1000))[0])
    assert lay.folding() == {"PE": 1, "SIMD": 64}  # without the cap, SIMD alone


def test_finn_greedy_meets_the_target_or_relaxes_to_balance(hw_models):
    model = copy_model(hw_models[11])
    fs.finn_greedy(model, 500)
    assert _ii(model) <= 500
    floor = fs.candidate_iis(PricedTable(model, FAMILY))[0]
    fs.finn_greedy(model, 1)  # unreachable: the second pass folds for the II the first reached
    assert _ii(model) == floor


def test_step_fold_budget_and_fewest_luts_use_the_search(hw_models):
    model = hw_models[11]
    _, want = fs.fold_search_for(model, FAMILY, lut_budget=30000)
    got = step_fold(copy_model(model), CompileOptions(lut_budget=30000))
    assert _ii(got) == want.ii_cycles and _as_compiled(got) == want.totals
    with pytest.raises(ValueError, match=r"the fastest folding within the budget takes [\d,]+ cycles per frame, more"):
        step_fold(copy_model(model), CompileOptions(lut_budget=30000, target_cycles=want.ii_cycles - 1))
    _, want = fs.fold_search_for(model, FAMILY, target_cycles=400)
    got = step_fold(copy_model(model), CompileOptions(target_fps=50e6 / 400, minimize_luts=True))
    assert _as_compiled(got) == want.totals
    with pytest.raises(ValueError, match="minimize_luts needs a target"):
        CompileOptions(minimize_luts=True)
