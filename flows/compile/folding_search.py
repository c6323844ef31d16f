"""Resource-aware folding: the fastest folding within a LUT / block-RAM budget, or the fewest LUTs
for a throughput target; the exhaustive reference; FINN's greedy SetFolding as a baseline.

- :func:`search`: the project's search. Without a target, the lowest II (the most cycles per frame of
  any layer) whose estimated LUTs and block RAMs fit the budget; with a target (cycles or frames/s),
  the fewest estimated LUTs among foldings that reach it (and fit the budget, if one is given).
- :func:`fold_search_for`: the same on a copy of the model, for callers outside the compile steps.
- :func:`exhaustive` (:mod:`.folding_exhaustive`): every combination of the layers' foldings, the
  reference the benchmark measures :func:`search` against.
- :func:`finn_greedy`: FINN's ``SetFolding`` rule written for qnnflow's layers, for comparison.

Every figure is the compiler's estimate (``flows/compile/resources.py``) of the model as compiled:
the layers plus the width converters and FIFOs ``step_streams`` inserts between them
(:mod:`.folding_table` explains the decomposition). Both objectives break ties the same way:
fastest within budget by (II, LUTs, block RAMs), fewest LUTs by (LUTs, block RAMs, II).
"""

from __future__ import annotations

import itertools

import numpy as np
from qnnflow.flows.compile.folding import _divisors
from qnnflow.flows.compile.folding_exhaustive import exhaustive
from qnnflow.flows.compile.folding_table import (
    FASTEST,
    FEWEST_LUTS,
    Budget,
    FoldingRecord,
    PricedTable,
    check_reachable,
    copy_model,
    finish,
    ii_cycles,
    lut_bram_keys,
    resolve_target,
)
from qnnflow.flows.ir.layers import Layer, get_layer, hw_nodes
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

_MAX_ROUNDS = 20  # local-search sweeps; they settle in two or three on the zoo's models


def search(
    model: ModelWrapper,
    family: str,
    *,
    lut_budget: int | None = None,
    bram_budget: int | None = None,
    target_fps: float | None = None,
    clock_mhz: float | None = None,
    target_cycles: int | None = None,
    fifo_depth: int = 2,
) -> tuple[ModelWrapper, FoldingRecord]:
    """Fold ``model`` (its hardware layers, before the ``streams`` step; changed in place) for
    ``family``: without a target, the lowest II whose estimated LUTs and block RAMs fit
    ``lut_budget`` / ``bram_budget``; with a target (``target_cycles``, or ``target_fps`` at
    ``clock_mhz``), the fewest estimated LUTs at an II of at most the target (within the budget if
    one is given). The estimate includes the width converters and FIFOs (``fifo_depth`` beats,
    before simulation sizes them) that the ``streams`` step will insert.

    How: the candidate IIs are the distinct cycles per frame the layers' foldings take. At a
    candidate II every layer may take any folding of at most that many cycles, and each takes its
    cheapest one on its own: fewest estimated LUTs, then block RAMs, priced with
    :func:`~.resources.estimate` (the least parallel folding is not always the cheapest: a weight
    memory may leave a block RAM for logic, an input buffer appear). A block-RAM budget couples
    the layers (they share it); the fewest LUTs within it is a multiple-choice knapsack, which
    :func:`knapsack` solves exactly over the block-RAM count. Those layer figures plus each stream's
    least possible figures bound every folding at that II from below, and the bound falls as the II
    grows: a bisection finds the first candidate where it fits the budget, and candidates are tried
    upwards from there. With a target there is one candidate, the target.

    What the per-layer choice ignores: the streams. The FIFO on a stream is as wide as its
    producer's output beat, and where the consumer's input beat differs there is a width converter
    and a second FIFO; so their cost depends on the foldings of both ends, and
    ``hw/width_converter.sv`` joins only widths that divide one another (anything else cannot be
    built). From the per-layer choice, a local search re-picks one layer at a time, and the two ends
    of each stream whose widths differ together, against the whole model's figures (layers and
    streams), minimising (unbuildable streams, budget excess, LUTs, block RAMs); the candidate
    passes if the result is buildable and fits. That is a heuristic -- it can miss a folding only
    three or more simultaneous changes reach -- which the ``folding-search`` benchmark measures
    against :func:`~.folding_exhaustive.exhaustive`; on a model without streams (one layer) it is
    exact. The result is checked against :func:`~.folding_table.full_totals` (the stream passes on a
    copy of the graph).

    ValueError: no budget and no target; a target no folding reaches (names the limiting layer); a
    budget nothing fits (names what the smallest design found needs)."""
    budget = Budget(lut_budget, bram_budget)
    target = resolve_target(target_fps, clock_mhz, target_cycles)
    if target is None and budget.luts is None and budget.brams is None:
        raise ValueError("give a LUT or block-RAM budget, or a throughput target (cycles or frames per second)")
    if target is not None:
        check_reachable(model, target)
    table = PricedTable(model, family, fifo_depth)
    if target is not None:
        pick, candidates, objective = best_at(table, target, budget), 1, FEWEST_LUTS
        if pick is None:
            raise over_budget(table, budget, target)
    else:
        (pick, candidates), objective = _fastest(table, budget), FASTEST
    return model, finish(model, table, pick, objective, candidates, budget)


def fold_search_for(
    model: ModelWrapper,
    family: str,
    lut_budget: int | None = None,
    bram_budget: int | None = None,
    target_fps: float | None = None,
    clock_mhz: float | None = None,
    target_cycles: int | None = None,
    fifo_depth: int = 2,
) -> tuple[ModelWrapper, FoldingRecord]:
    """:func:`search` on a copy of ``model`` (a graph after the compile steps up to ``hw_layers``),
    which is left as it was: returns the folded copy and the record. For callers that try several
    budgets or targets on one model (design-space exploration); the compile step calls :func:`search`."""
    return search(
        copy_model(model), family, lut_budget=lut_budget, bram_budget=bram_budget, target_fps=target_fps,
        clock_mhz=clock_mhz, target_cycles=target_cycles, fifo_depth=fifo_depth,
    )  # fmt: skip


# -- the search --------------------------------------------------------------------------------------


def _allowed(table: PricedTable, ii: int) -> list[list[int]]:
    return [[k for k, c in enumerate(opts) if c.cycles <= ii] for opts in table.choices]


def _least_streams(table: PricedTable, allowed: list[list[int]]) -> tuple[int, int] | None:
    """The fewest LUTs and the fewest block RAMs the streams can have with ``allowed`` (each stream on
    its own); None if a stream cannot be built whatever its layers take."""
    luts = brams = 0
    for e in table.edges:
        outs = {table.choices[e.src][k].out_width for k in allowed[e.src]}
        ins = {table.choices[e.dst][k].in_width for k in allowed[e.dst]}
        costs = [c for a in outs for b in ins if (c := table.stream(e, a, b)) is not None]
        if not costs:
            return None
        luts, brams = luts + min(c[0] for c in costs), brams + min(c[1] for c in costs)
    return luts, brams


def _bound_fits(table: PricedTable, ii: int, budget: Budget) -> bool:
    """Whether a folding at ``ii`` can fit ``budget`` by a lower bound: the layers' fewest LUTs within
    the block RAMs the streams leave at least, plus the streams' fewest. It falls as ``ii`` grows."""
    allowed = _allowed(table, ii)
    streams = _least_streams(table, allowed)
    if streams is None:
        return False
    cap = None if budget.brams is None else budget.brams - streams[1]
    pick = knapsack(table, allowed, cap) if cap is None or cap >= 0 else None
    if pick is None:
        return False
    luts, brams = table.own_totals(pick)
    return budget.fits(luts + streams[0], brams + streams[1])


def candidate_iis(table: PricedTable) -> list[int]:
    """Every II a folding can have: the distinct cycles of the layers' foldings, from the floor up."""
    floor = max(min(c.cycles for c in opts) for opts in table.choices)
    return sorted({c.cycles for opts in table.choices for c in opts if c.cycles >= floor})


def _fastest(table: PricedTable, budget: Budget) -> tuple[list[int], int]:
    cands = candidate_iis(table)
    priced = 0
    lo, hi = 0, len(cands)  # the first candidate whose lower bound fits: the bound falls as the II grows
    while lo < hi:
        mid = (lo + hi) // 2
        priced += 1
        if _bound_fits(table, cands[mid], budget):
            hi = mid
        else:
            lo = mid + 1
    for ii in cands[lo:]:
        priced += 1
        pick = best_at(table, ii, budget)
        if pick is not None:
            return pick, priced
    raise over_budget(table, budget, None)


def _key(budget: Budget):
    return lambda t: (t[2], budget.excess(t[0], t[1]), t[0], t[1])


def _cheapest(table: PricedTable, allowed: list[list[int]], weight) -> list[int]:
    return [min(ks, key=lambda k, i=i: weight(table.choices[i][k])) for i, ks in enumerate(allowed)]


def knapsack(table: PricedTable, allowed: list[list[int]], brams: int | None) -> list[int] | None:
    """The layers' own fewest LUTs (then fewest block RAMs) with at most ``brams`` block RAMs in all,
    one choice among ``allowed`` per layer, streams left out: a multiple-choice knapsack, solved
    exactly by dynamic programming over the block-RAM count. None if even the fewest block RAMs
    exceed ``brams``; without a limit, each layer's cheapest choice on its own."""
    if brams is None:
        return _cheapest(table, allowed, lambda c: (c.luts, c.brams))
    cap = min(brams, sum(max(table.choices[i][k].brams for k in ks) for i, ks in enumerate(allowed)))
    inf = np.iinfo(np.int64).max // 4
    dp = np.zeros(cap + 1, np.int64)  # dp[b]: fewest LUTs of the layers so far with at most b block RAMs
    took = []
    for i, ks in enumerate(allowed):
        new, arg = np.full(cap + 1, inf, np.int64), np.full(cap + 1, -1, np.int64)
        for k in ks:
            c = table.choices[i][k]
            if c.brams > cap:
                continue
            cand = np.full(cap + 1, inf, np.int64)
            cand[c.brams :] = dp[: cap + 1 - c.brams] + c.luts
            better = cand < new
            new[better], arg[better] = cand[better], k
        dp = new
        took.append(arg)
    if dp[cap] >= inf:
        return None
    b = int(np.argmax(dp == dp[cap]))  # the fewest block RAMs at the fewest LUTs
    pick = []
    for i in reversed(range(len(allowed))):
        k = int(took[i][b])
        pick.append(k)
        b -= table.choices[i][k].brams
    return pick[::-1]


def best_at(table: PricedTable, ii: int, budget: Budget) -> list[int] | None:
    """The fewest-LUT buildable folding found of at most ``ii`` cycles that fits ``budget``; None if
    none is found. Starts from :func:`knapsack`, then :func:`descend` adds the streams."""
    allowed = _allowed(table, ii)
    start = knapsack(table, allowed, budget.brams)
    if start is None:
        return None
    pick, tot = descend(table, start, allowed, _key(budget))
    return pick if tot[2] == 0 and budget.fits(tot[0], tot[1]) else None


def _part(table: PricedTable, group: tuple[int, ...], edges: list, pick: list[int]) -> tuple[int, int, int]:
    """What the layers ``group`` at their choices in ``pick`` add: their own figures and those of
    ``edges`` (every stream touching them, each once)."""
    luts = sum(table.choices[i][pick[i]].luts for i in group)
    brams = sum(table.choices[i][pick[i]].brams for i in group)
    broken = 0
    for e in edges:
        cost = table.edge_cost(e, pick)
        if cost is None:
            broken += 1
        else:
            luts, brams = luts + cost[0], brams + cost[1]
    return luts, brams, broken


def _move(table: PricedTable, pick: list[int], allowed: list[list[int]], key, group: tuple, tot: tuple) -> tuple:
    """Re-pick the layers ``group`` together for the lowest ``key`` of the model's totals ``tot``;
    returns the new totals (``tot`` itself when nothing is better)."""
    edges = [e for e in table.edges if e.src in group or e.dst in group]
    base = tuple(a - b for a, b in zip(tot, _part(table, group, edges, pick), strict=True))
    best, best_t, best_key = tuple(pick[i] for i in group), tot, key(tot)
    for combo in itertools.product(*(allowed[i] for i in group)):
        for i, k in zip(group, combo, strict=True):
            pick[i] = k
        t = tuple(a + b for a, b in zip(base, _part(table, group, edges, pick), strict=True))
        if (k := key(t)) < best_key:
            best, best_t, best_key = combo, t, k
    for i, k in zip(group, best, strict=True):
        pick[i] = k
    return best_t


def descend(table: PricedTable, pick: list[int], allowed: list[list[int]], key) -> tuple[list[int], tuple]:
    """Local search from ``pick`` on the whole model's (LUTs, block RAMs, unbuildable streams), by
    ``key``: each layer in turn, then the two layers of each stream whose beat widths differ together
    (which can match them and drop the width converter), take the choices among ``allowed`` that
    lower ``key`` most, until no such move lowers it. Returns the pick and its totals."""
    pick = list(pick)
    tot = table.totals(pick)
    singles = [(i,) for i, ks in enumerate(allowed) if len(ks) > 1]
    for _ in range(_MAX_ROUNDS):
        improved = False
        pairs = [
            (e.src, e.dst) for e in table.edges
            if table.choices[e.src][pick[e.src]].out_width != table.choices[e.dst][pick[e.dst]].in_width
        ]  # fmt: skip
        for group in singles + pairs:
            new = _move(table, pick, allowed, key, group, tot)
            improved, tot = improved or new is not tot, new
        if not improved:
            break
    return pick, tot


def _smallest(table: PricedTable, allowed: list[list[int]], brams: int | None) -> tuple[str, list[int], tuple]:
    """The fewest-LUT folding found (within ``brams`` block RAMs if given and possible, else the one
    with the fewest block RAMs): what it is, its pick and totals."""
    if brams is None:
        pick, tot = descend(table, knapsack(table, allowed, None), allowed, lambda t: (t[2], t[0], t[1]))
        # a knapsack over the layers, then a descent that prices the streams: the fewest LUTs found,
        # not proven fewest (the FIFOs' register slices make a stream's width cost LUTs)
        return "the smallest design found (fewest LUTs)", pick, tot
    start = knapsack(table, allowed, brams)
    if start is not None:
        pick, tot = descend(table, start, allowed, _key(Budget(None, brams)))
        if tot[1] <= brams:
            return f"with at most {brams:,} block RAMs, the smallest design found", pick, tot
    start = _cheapest(table, allowed, lambda c: (c.brams, c.luts))
    pick, tot = descend(table, start, allowed, lambda t: (t[2], t[1], t[0]))
    return "the design with the fewest block RAMs found", pick, tot


def over_budget(table: PricedTable, budget: Budget, target: int | None) -> ValueError:
    """The error for a budget no folding (of at most ``target`` cycles) fits, naming what the smallest
    designs found need: the one with the fewest LUTs and, given a block-RAM budget, the one with the
    fewest LUTs within it (or with the fewest block RAMs, if none is)."""
    lut_key, bram_key = lut_bram_keys(table.family)
    ii = target if target is not None else max(c.cycles for opts in table.choices for c in opts)
    allowed = _allowed(table, ii)
    needs = []
    for brams in (None, budget.brams) if budget.brams is not None else (None,):
        what, pick, (luts, n_brams, broken) = _smallest(table, allowed, brams)
        if broken:
            needs = ["no buildable folding was found (streams whose widths do not divide one another)"]
            break
        needs.append(f"{what} needs {luts:,} {lut_key} and {n_brams:,} {bram_key} at II {table.ii(pick):,} cycles")
    at = f" of at most {target:,} cycles per frame" if target is not None else ""
    return ValueError(
        f"no folding{at} fits the budget of {budget.describe(table.family)} on {table.family}: "
        + "; ".join(needs)
        + f" (estimates with the stream FIFOs of depth {table.fifo_depth} and width converters); raise the budget"
    )


# -- FINN's SetFolding, as a baseline -------------------------------------------------------------


def _raise_until(layer: Layer, attr: str, values: list[int], target: int) -> None:
    """Set ``attr`` to each of ``values`` in turn until the layer takes at most ``target`` cycles."""
    for v in values:
        layer.set(attr, v)
        if layer.exp_cycles() <= target:
            return


def _finn_mvau(layer: Layer, target: int, wwidth_max: int) -> None:
    layer.set("PE", 1)
    layer.set("SIMD", 1)
    wbits = DataType[layer.get("weightDataType")].bitwidth()
    for simd in _divisors(int(layer.get("MW"))):
        prev = int(layer.get("SIMD"))
        layer.set("SIMD", simd)
        if layer.exp_cycles() <= target:
            break
        if wbits * simd > wwidth_max:  # the weight stream of a PE would be too wide: back one step
            layer.set("SIMD", prev)
            break
    _raise_until(layer, "PE", _divisors(int(layer.get("MH"))), target)


def _finn_layer(model: ModelWrapper, layer: Layer, target: int, wwidth_max: int) -> None:
    op = layer.op_type
    if op == "MVAU":
        _finn_mvau(layer, target, wwidth_max)
    elif op == "VVAU":
        ch = int(layer.get("Channels"))
        layer.set("SIMD", 1)
        _raise_until(layer, "PE", _divisors(ch), target)
        if int(layer.get("PE")) == ch and layer.exp_cycles() > target:
            _raise_until(layer, "SIMD", _divisors(layer.kk()), target)
        swg = model.find_producer(layer.node.input[0])
        if swg is not None and swg.op_type == "SlidingWindow":  # the depthwise window generator: SIMD = PE
            get_layer(swg).set("SIMD", int(layer.get("PE")))
    elif op == "SlidingWindow":
        if any(c.op_type == "VVAU" for c in model.find_consumers(layer.node.output[0])):
            return  # set by its VVAU
        _raise_until(layer, "SIMD", _divisors(int(layer.get("IFMChannels"))), target)
    elif op in ("Thresholding", "MaxPool", "AddStreams", "DuplicateStreams", "TVSmooth"):
        _raise_until(layer, "PE", _divisors(int(layer.get("NumChannels"))), target)
    elif op == "LabelSelect":
        _raise_until(layer, "PE", _divisors(int(layer.get("Labels"))), target)


def finn_greedy(
    model: ModelWrapper, target_cycles: int, *, mvau_wwidth_max: int = 36, two_pass_relaxation: bool = True
) -> ModelWrapper:
    """Fold ``model`` (in place) the way FINN's ``SetFolding`` transformation does, for comparison;
    resources play no part. Per layer, in graph order, from PE = SIMD = 1:

    - MVAU: SIMD up through the divisors of MW until the layer takes at most ``target_cycles``, or
      until SIMD x weight bits would exceed ``mvau_wwidth_max`` (36; that step is undone); then PE
      up through the divisors of MH until the target is met (or PE = MH).
    - VVAU: PE up through the divisors of Channels; once PE = Channels and still too slow, SIMD
      through the divisors of KH*KW. Its SlidingWindow producer gets SIMD = the VVAU's PE (FINN's
      depthwise window generator), and is not folded on its own.
    - SlidingWindow: SIMD through the divisors of its channels. Thresholding, AddStreams,
      DuplicateStreams, TVSmooth and MaxPool: PE through the divisors of NumChannels; LabelSelect:
      PE through the divisors of Labels.
    - ``two_pass_relaxation``: if a layer cannot reach the target, everything is folded again (once)
      for the II that was reached, which balances the pipeline.

    Differences from FINN: FINN stops when a layer takes fewer cycles than the target (strictly);
    here at most the target, as qnnflow's targets mean. FINN's SetFolding leaves its StreamingMaxPool
    alone; MaxPool here follows the PE rule of FINN's Pool_Batch. Widths that no width converter
    joins (``hw/width_converter.sv`` needs one to divide the other) are not avoided, as FINN's
    converters take any pair; such a folding cannot be compiled here."""
    if not isinstance(target_cycles, int) or target_cycles < 1:
        raise ValueError(f"target cycles per frame must be an integer of at least 1, not {target_cycles!r}")
    for node in hw_nodes(model):
        _finn_layer(model, get_layer(node), target_cycles, mvau_wwidth_max)
    reached = ii_cycles(model)
    if two_pass_relaxation and reached > target_cycles:
        finn_greedy(model, reached, mvau_wwidth_max=mvau_wwidth_max, two_pass_relaxation=False)
    return model


__all__ = [
    "FASTEST", "FEWEST_LUTS", "Budget", "FoldingRecord", "exhaustive", "finn_greedy", "fold_search_for", "search",
]  # fmt: skip
