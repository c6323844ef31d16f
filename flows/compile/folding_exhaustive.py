"""The exhaustive reference of the folding search: every combination of the layers' foldings.

:func:`exhaustive` has the objectives of :func:`qnnflow.flows.compile.folding_search.search` and
scores every combination by the whole model's estimate (the layers and the FIFOs and width
converters between them; :mod:`.folding_table`), vectorised with numpy: the last layers' choices
form a grid, the first layers' choices are looped over. It is what the ``folding-search``
benchmark measures the search against.

Pruning, exact for both objectives:

- budget: a folding is dropped that misses the budget even with every other layer at its fewest
  LUTs (block RAMs) and no streams, which only add;
- dominance: a folding ``o`` of a layer is dropped when another folding ``p`` of the layer is at
  least as fast and, whatever the neighbouring layers take, the model with ``p`` in place of
  ``o`` has no more LUTs, no more block RAMs and no stream that cannot be built. Checked as:
  cycles(p) <= cycles(o); every neighbour folding that can join ``o`` on a stream can join
  ``p``; and p's own figures minus o's, plus for each stream of the layer the largest increase
  (over the neighbour's foldings) of the stream's figures from o to p, is <= 0, for LUTs and for
  block RAMs. Then in any combination with ``o``, ``p`` in its place keeps the budget and the
  target and loses no objective value, so the optimum over the pruned combinations equals the
  optimum over all (the folding found may be another of equal value). Each round judges every
  layer against its neighbours' foldings as the round began, so the replacements stay valid
  together; rounds repeat until nothing is dropped. Of two foldings that dominate each other,
  the later is kept. A folding that no neighbour folding can join on one of its streams is
  dropped (nothing with it can be built).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from qnnflow.flows.compile.folding_table import (
    FASTEST,
    FEWEST_LUTS,
    Budget,
    FoldingRecord,
    PricedTable,
    check_reachable,
    finish,
    resolve_target,
)
from qonnx.core.modelwrapper import ModelWrapper

MAX_COMBINATIONS = 2_000_000_000  # some 10 to 40 s of enumeration on one core
_GRID = 1 << 20  # combinations scored at once (int64 arrays of this many elements)


def exhaustive(
    model: ModelWrapper,
    family: str,
    *,
    lut_budget: int | None = None,
    bram_budget: int | None = None,
    target_fps: float | None = None,
    clock_mhz: float | None = None,
    target_cycles: int | None = None,
    fifo_depth: int = 2,
    max_combinations: int = MAX_COMBINATIONS,
    prune: bool = True,
) -> tuple[ModelWrapper, FoldingRecord]:
    """The optimum of :func:`~.folding_search.search`'s objective over every combination of the layers'
    foldings (same arguments; ``model`` folded in place to it). Without a target: the lowest II that
    fits the budget, then the fewest LUTs, then block RAMs. With one: the fewest LUTs at an II of at
    most the target (within the budget), then block RAMs, then the lowest II. Combinations with a
    stream no width converter joins are skipped. ValueError when the combinations (after pruning)
    number more than ``max_combinations``, or when none fits.

    ``prune``: drop foldings that cannot be in a unique optimum (the module docstring says which and
    why the optimum is kept); ``prune=False`` enumerates the full product (a check of that argument
    on small models)."""
    budget = Budget(lut_budget, bram_budget)
    target = resolve_target(target_fps, clock_mhz, target_cycles)
    if target is not None:
        check_reachable(model, target)
    table = PricedTable(model, family, fifo_depth)
    limit = target if target is not None else max(c.cycles for opts in table.choices for c in opts)
    allowed = [[k for k, c in enumerate(opts) if c.cycles <= limit] for opts in table.choices]
    full_product = math.prod(len(ks) for ks in allowed)
    if prune:
        allowed = _prune(table, _within_budget(table, allowed, budget))
    combos = math.prod(len(ks) for ks in allowed)
    if combos > max_combinations:
        raise ValueError(
            f"{combos:,} combinations of foldings (of {full_product:,} before pruning) are more than "
            f"max_combinations ({max_combinations:,}); per layer: {[len(ks) for ks in allowed]}"
        )
    objective = FEWEST_LUTS if target is not None else FASTEST
    best = _enumerate(_Arrays(table, allowed), objective, budget) if combos else None
    if best is None:
        raise ValueError(f"no combination of foldings fits the budget of {budget.describe(family)} on {family}")
    pick = [allowed[i][k] for i, k in enumerate(best)]
    notes = {"full_product": full_product, "options_per_layer": [len(ks) for ks in allowed]}
    return model, finish(model, table, pick, objective, combos, budget, notes)


# -- pruning ------------------------------------------------------------------------------------------


def _within_budget(table: PricedTable, allowed: list[list[int]], budget: Budget) -> list[list[int]]:
    """``allowed`` without the choices that miss the budget even with every other layer at its fewest
    LUTs (block RAMs) and no streams (which only add)."""
    out = allowed
    for limit, field in ((budget.luts, "luts"), (budget.brams, "brams")):
        if limit is None:
            continue
        least = [min(getattr(table.choices[i][k], field) for k in ks) for i, ks in enumerate(out)]
        room = limit - sum(least)
        out = [[k for k in ks if getattr(table.choices[i][k], field) - least[i] <= room] for i, ks in enumerate(out)]
    return out


def _edge_arrays(table: PricedTable, edge, src: list[int], dst: list[int]) -> tuple[np.ndarray, ...]:
    """(LUTs, block RAMs, joinable) of ``edge`` for every pair of the choices ``src`` x ``dst``."""
    shape = (len(src), len(dst))
    luts, brams, ok = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, bool)
    for a, ka in enumerate(src):
        ca = table.choices[edge.src][ka]
        for b, kb in enumerate(dst):
            cost = table.stream(edge, ca.out_width, table.choices[edge.dst][kb].in_width)
            if cost is not None:
                luts[a, b], brams[a, b], ok[a, b] = cost[0], cost[1], True
    return luts, brams, ok


def _dominates(table: PricedTable, i: int, allowed: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``dom[p, o]``: choice p of layer ``i`` may replace choice o (see :func:`exhaustive`); ``dead[o]``:
    o joins no neighbour choice on one of its streams."""
    ks = allowed[i]
    opts = [table.choices[i][k] for k in ks]
    cyc = np.array([c.cycles for c in opts])
    d_lut = np.array([c.luts for c in opts])[:, None] - np.array([c.luts for c in opts])[None, :]
    d_bram = np.array([c.brams for c in opts])[:, None] - np.array([c.brams for c in opts])[None, :]
    dom = cyc[:, None] <= cyc[None, :]
    dead = np.zeros(len(ks), bool)
    for e in table.touching[i]:
        if e.src == i:
            luts, brams, ok = _edge_arrays(table, e, ks, allowed[e.dst])
        else:
            luts, brams, ok = (a.T for a in _edge_arrays(table, e, allowed[e.src], ks))
        dead |= ~ok.any(axis=1)
        # [p, o, x]: x joins o -> x joins p; the increase of the stream's figures from o to p
        dom &= ~(ok[None, :, :] & ~ok[:, None, :]).any(axis=2)
        for d, arr in ((d_lut, luts), (d_bram, brams)):  # (a dead o has no x: it is dropped anyway)
            inc = np.where(ok[None, :, :], arr[:, None, :] - arr[None, :, :], -(2**40))
            d += inc.max(axis=2)
    dom &= (d_lut <= 0) & (d_bram <= 0)
    np.fill_diagonal(dom, False)
    return dom, dead


def _prune(table: PricedTable, allowed: list[list[int]]) -> list[list[int]]:
    while True:
        rounds = [_dominates(table, i, allowed) for i in range(len(allowed))]
        kept_all = []
        for ks, (dom, dead) in zip(allowed, rounds, strict=True):
            kept = ~dead
            for o in range(len(ks)):  # o goes if a choice still kept may replace it
                if kept[o] and (dom[:, o] & kept).any():
                    kept[o] = False
            kept_all.append([k for k, keep in zip(ks, kept, strict=True) if keep])
        if kept_all == allowed:
            return allowed
        allowed = kept_all
        if not all(allowed):
            return allowed


# -- enumeration --------------------------------------------------------------------------------------


class _Arrays:
    """The figures of the allowed choices as numpy arrays: per layer (cycles, LUTs, block RAMs), per
    stream (LUTs, block RAMs, joinable) over its two layers' choices."""

    def __init__(self, table: PricedTable, allowed: list[list[int]]):
        self.n = [len(ks) for ks in allowed]
        self.own = [
            tuple(
                np.array([getattr(table.choices[i][k], f) for k in ks], np.int64) for f in ("cycles", "luts", "brams")
            )
            for i, ks in enumerate(allowed)
        ]
        self.edges = [(e.src, e.dst, _edge_arrays(table, e, allowed[e.src], allowed[e.dst])) for e in table.edges]


def _on_axes(arr: np.ndarray, axes: tuple[int, ...], ndim: int) -> np.ndarray:
    """``arr`` (one dimension per entry of ``axes``) shaped to broadcast on those axes of ``ndim``."""
    order = np.argsort(axes)
    arr = arr.transpose(order)
    shape = [1] * ndim
    for ax, size in zip(sorted(axes), arr.shape, strict=True):
        shape[ax] = size
    return arr.reshape(shape)


def _suffix(arrs: _Arrays, k: int) -> tuple[np.ndarray, ...]:
    """(cycles, LUTs, block RAMs, joinable) over the grid of the choices of layers k.. that do not
    depend on the layers before k."""
    nd = len(arrs.n) - k
    cyc = np.zeros([1] * nd, np.int64)
    luts, brams, ok = np.zeros([1] * nd, np.int64), np.zeros([1] * nd, np.int64), np.ones([1] * nd, bool)
    for i in range(k, len(arrs.n)):
        c, lu, br = (_on_axes(a, (i - k,), nd) for a in arrs.own[i])
        cyc, luts, brams = np.maximum(cyc, c), luts + lu, brams + br
    for a, b, (lu, br, jo) in arrs.edges:
        if a >= k and b >= k:
            axes = (a - k, b - k)
            luts, brams = luts + _on_axes(lu, axes, nd), brams + _on_axes(br, axes, nd)
            ok = ok & _on_axes(jo, axes, nd)
    grid = tuple(arrs.n[k:])
    return tuple(np.broadcast_to(x, grid) for x in (cyc, luts, brams, ok))


def _best_in(grids: tuple[np.ndarray, ...], objective: str, budget: Budget) -> tuple[tuple, tuple] | None:
    """The best (key, grid index) among the joinable combinations that fit ``budget``."""
    cyc, luts, brams, ok = grids
    sel = ok.copy()
    if budget.luts is not None:
        sel &= luts <= budget.luts
    if budget.brams is not None:
        sel &= brams <= budget.brams
    if not sel.any():
        return None
    key = []
    for arr in (cyc, luts, brams) if objective == FASTEST else (luts, brams, cyc):
        m = int(arr[sel].min())
        sel &= arr == m
        key.append(m)
    return tuple(key), np.unravel_index(int(np.argmax(sel)), sel.shape)


def _enumerate(arrs: _Arrays, objective: str, budget: Budget) -> list[int] | None:
    """The best combination (one index into each layer's allowed choices), or None if none fits."""
    n, nl = arrs.n, len(arrs.n)
    k = nl
    while k > 0 and math.prod(n[k - 1 :]) <= _GRID:
        k -= 1
    base = _suffix(arrs, k)
    nd = nl - k
    best_key, best = None, None
    for prefix in itertools.product(*(range(x) for x in n[:k])):
        cyc0 = max((int(arrs.own[i][0][p]) for i, p in enumerate(prefix)), default=0)
        if objective == FASTEST and best_key is not None and cyc0 > best_key[0]:
            continue
        luts0 = sum(int(arrs.own[i][1][p]) for i, p in enumerate(prefix))
        brams0 = sum(int(arrs.own[i][2][p]) for i, p in enumerate(prefix))
        cyc, luts, brams, ok = np.maximum(base[0], cyc0), base[1] + luts0, base[2] + brams0, base[3]
        for a, b, (lu, br, jo) in arrs.edges:
            if a < k and b < k:
                sub = (prefix[a], prefix[b])
            elif a < k:
                sub, lu, br, jo = (), *(_on_axes(x[prefix[a]], (b - k,), nd) for x in (lu, br, jo))
            elif b < k:
                sub, lu, br, jo = (), *(_on_axes(x[:, prefix[b]], (a - k,), nd) for x in (lu, br, jo))
            else:
                continue  # in the suffix's figures already
            luts, brams, ok = luts + lu[sub], brams + br[sub], ok & jo[sub]
        found = _best_in((cyc, luts, brams, ok), objective, budget)
        if found is not None and (best_key is None or found[0] < best_key):
            best_key, best = found[0], [*prefix, *(int(j) for j in found[1])]
    return best
