"""The ``folding-search`` benchmark: the resource-aware folding search against the exhaustive optimum
and the greedy rules, on the estimates the compiler folds by.

Models: the digits CNN w2a2 and TFC w1a1 of the zoo with random weights
(:func:`qnnflow.models.zoo.random_model`, exported to QONNX; folding does not read weight values, only
shapes and types), taken through the compile steps up to ``hw_layers``; and cnv-w1a1, whose
combinations of foldings are far too many to enumerate, for the search's time alone.

Cases per model, on ECP5 estimates at :data:`CLOCK_MHZ`: LUT budgets of :data:`LUT_FACTORS` times
the fewest-LUT design (the fastest folding that fits), one with a block-RAM budget too, and
frames/s targets :data:`FPS_TARGETS` (the fewest LUTs that reach them). For each:

- ``search``: :func:`qnnflow.flows.compile.folding_search.fold_search_for`;
- ``exhaustive``: :func:`qnnflow.flows.compile.folding_exhaustive.exhaustive`, the optimum;
- ``finn_greedy``: FINN's SetFolding rule (:func:`~qnnflow.flows.compile.folding_search.finn_greedy`);
  for a budget, which SetFolding does not take, a bisection over its cycle target for the fastest
  result that fits (what a FINN user would do by hand);
- ``fold_for_cycles``: qnnflow's rule before the search (each layer's least parallel folding that
  reaches the target, then balanced; for a budget the same bisection, which is what the removed
  ``fold_for_budget`` did).

For a budget, both rules also get ``best_target``: the fastest result that fits over every
candidate II as their target (a scan, run once) -- the best either rule can give.

Every result is judged by the same figure: the model's estimated totals with the stream FIFOs and
width converters (:func:`qnnflow.flows.compile.folding_table.full_totals`). Gaps are to the exhaustive
optimum, in %: of the II for budgets, of the LUTs for targets. Wall times are medians of
:data:`REPEATS` runs. Registered in :mod:`qnnflow.bench`: ``python -m qnnflow.bench --only folding-search``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from qnnflow.bench.registry import benchmark, timed

MODELS = ("digits-cnn-w2a2", "tfc-w1a1")
SCALE_MODELS = ("cnv-w1a1",)  # search and the greedy rules only: the exhaustive product is ~1e25
FAMILY = "ecp5"
CLOCK_MHZ = 50.0
LUT_FACTORS = (1.25, 2.0, 4.0, 8.0)
BRAM_CASE = (4.0, 0.5)  # LUTs x the fewest-LUT design's, block RAMs x its block RAMs
# frames/s targets; cnv-w1a1 reaches at most ~6,170 frames/s at 50 MHz (its first window generator)
FPS_TARGETS = {"digits-cnn-w2a2": (2_000.0, 10_000.0, 50_000.0), "tfc-w1a1": (2_000.0, 10_000.0, 50_000.0),
               "cnv-w1a1": (500.0, 2_000.0, 5_000.0)}  # fmt: skip
REPEATS = {"search": 5, "exhaustive": 3, "finn_greedy": 3, "fold_for_cycles": 3}


def hw_model(preset: str, folder: Path):
    """``preset`` with random weights, exported and compiled up to the ``fold`` step."""
    from qnnflow.flows.compile.importer import load_model
    from qnnflow.flows.compile.steps import STEPS, CompileOptions
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    folder.mkdir(parents=True, exist_ok=True)
    model = load_model(export_qonnx(random_model(preset), folder / f"{preset}.onnx", parse_preset(preset).input_shape))
    opts = CompileOptions()
    for name, step in STEPS:
        if name == "fold":
            break
        model = step(model, opts)
    return model


def _figures(model) -> dict:
    from qnnflow.flows.compile.folding_table import full_totals, ii_cycles, lut_bram_keys

    lut_key, bram_key = lut_bram_keys(FAMILY)
    try:
        t = full_totals(model, FAMILY)
    except ValueError as err:  # a stream no width converter joins: the folding cannot be compiled
        return {"ii_cycles": ii_cycles(model), "buildable": False, "why": str(err)}
    return {"ii_cycles": ii_cycles(model), "luts": t[lut_key], "brams": t[bram_key], "buildable": True}


def _fits(fig: dict, case: dict) -> bool:
    return (
        fig["buildable"]
        and fig["luts"] <= case.get("lut_budget", fig["luts"])
        and fig["brams"] <= case.get("bram_budget", fig["brams"])
    )


def _bisect(model, fold: Callable, case: dict) -> dict:
    """The fastest result of ``fold(model, target)`` that fits the budget, by bisection on the target
    between the floor and the all-PE=SIMD=1 II (results are not monotone in it; a user would do this)."""
    from qnnflow.flows.compile.folding_search import candidate_iis
    from qnnflow.flows.compile.folding_table import PricedTable

    iis = candidate_iis(PricedTable(model, FAMILY))
    lo, hi, runs = iis[0], iis[-1], 0
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        fig = _figures(fold(model, mid))
        runs += 1
        if _fits(fig, case):
            best, hi = fig, mid - 1
        else:
            lo = mid + 1
    return {**(best or {"fits": False}), "folds_tried": runs}


def _best_target(model, fold: Callable, case: dict) -> dict:
    """The fastest result of ``fold(model, target)`` that fits the budget over every candidate II as
    the target: the best the rule can give under the budget."""
    from qnnflow.flows.compile.folding_search import candidate_iis
    from qnnflow.flows.compile.folding_table import PricedTable

    iis = candidate_iis(PricedTable(model, FAMILY))
    for ii in iis:
        fig = _figures(fold(model, ii))
        if _fits(fig, case):
            return {**fig, "target_cycles": ii, "folds_tried": iis.index(ii) + 1}
    return {"fits": False, "folds_tried": len(iis)}


def _baseline(model, name: str, case: dict) -> dict:
    from qnnflow.flows.compile.folding import fold_for_cycles
    from qnnflow.flows.compile.folding_search import finn_greedy
    from qnnflow.flows.compile.folding_table import copy_model

    fold = finn_greedy if name == "finn_greedy" else lambda m, c: fold_for_cycles(m, c, relax=True)
    result: dict = {}

    def run() -> None:
        m = copy_model(model)
        result.update(_figures(fold(m, case["target_cycles"])) if "target_cycles" in case else _bisect(m, fold, case))

    samples, median = timed(run, REPEATS[name])
    out = {**result, "seconds_median": round(median, 4), "seconds_samples": [round(s, 4) for s in samples]}
    if "target_cycles" not in case:  # also the best over every target (one run, timed once)
        best: dict = {}
        samples, _ = timed(lambda: best.update(_best_target(copy_model(model), fold, case)), 1)
        out["best_target"] = {**best, "seconds": round(samples[0], 4)}
    return out


def _searched(model, name: str, case: dict) -> dict:
    from qnnflow.flows.compile.folding_search import exhaustive, fold_search_for
    from qnnflow.flows.compile.folding_table import copy_model, lut_bram_keys

    out: dict = {}

    def run() -> None:
        try:
            if name == "search":
                _, rec = fold_search_for(model, FAMILY, **case)
            else:
                _, rec = exhaustive(copy_model(model), FAMILY, **case)
        except ValueError as err:
            out.update(error=str(err))
            return
        lut_key, bram_key = lut_bram_keys(FAMILY)
        out.update(ii_cycles=rec.ii_cycles, luts=rec.totals[lut_key], brams=rec.totals[bram_key])
        out.update(evaluated=rec.candidates, folding=rec.folding, **rec.notes)

    samples, median = timed(run, REPEATS[name])
    return {**out, "seconds_median": round(median, 4), "seconds_samples": [round(s, 4) for s in samples]}


def _gap(result: dict, best: dict, case: dict) -> float | None:
    if "luts" not in result or "luts" not in best or not result.get("buildable", True):
        return None
    key = "luts" if "target_cycles" in case else "ii_cycles"
    return round(100 * (result[key] / best[key] - 1), 2)


def _cases(model, preset: str) -> list[dict]:
    from qnnflow.flows.compile.folding import fps_to_cycles
    from qnnflow.flows.compile.folding_search import candidate_iis, fold_search_for
    from qnnflow.flows.compile.folding_table import PricedTable

    _, small = fold_search_for(model, FAMILY, target_cycles=candidate_iis(PricedTable(model, FAMILY))[-1])
    luts, brams = small.totals["LUT4"], small.totals["DP16KD"]
    cases = [{"lut_budget": round(f * luts)} for f in LUT_FACTORS]
    cases.append({"lut_budget": round(BRAM_CASE[0] * luts), "bram_budget": int(BRAM_CASE[1] * brams)})
    cases += [{"target_cycles": fps_to_cycles(fps, CLOCK_MHZ), "target_fps": fps} for fps in FPS_TARGETS[preset]]
    return cases


def _run_case(model, case: dict, methods: tuple[str, ...]) -> dict:
    args = {k: v for k, v in case.items() if k != "target_fps"}
    row = {"case": case}
    for name in methods:
        row[name] = _searched(model, name, args) if name in ("search", "exhaustive") else _baseline(model, name, args)
    if "exhaustive" in row:
        for name in methods:
            if name != "exhaustive":
                row[name]["gap_pct"] = _gap(row[name], row["exhaustive"], case)
                if "best_target" in row[name]:
                    row[name]["best_target"]["gap_pct"] = _gap(row[name]["best_target"], row["exhaustive"], case)
    return row


def _model_figures(preset: str, work: Path, exhaustive: bool) -> dict:
    import math

    from qnnflow.flows.compile.folding_table import PricedTable

    model = hw_model(preset, work)
    table = PricedTable(model, FAMILY)
    methods = ("search", "exhaustive", "finn_greedy", "fold_for_cycles") if exhaustive else ("search", "finn_greedy")
    rows = []
    for case in _cases(model, preset):
        rows.append(_run_case(model, case, methods))
        r = rows[-1]
        print(
            f"[folding-search] {preset} {case}: "
            + "  ".join(
                f"{n} II {r[n].get('ii_cycles')} LUT {r[n].get('luts')} ({r[n]['seconds_median']:.3f} s)"
                for n in methods
            ),
            flush=True,
        )
    return {
        "source": "zoo preset with random weights (models/zoo.py random_model), compiled up to hw_layers",
        "layers": [f"{lay.node.name} ({lay.op_type})" for lay in table.layers],
        "options_per_layer": [len(c) for c in table.choices],
        "combinations": math.prod(len(c) for c in table.choices),
        "cases": rows,
    }


def _summary(models: dict) -> dict:
    out = {}
    for name in ("search", "finn_greedy", "fold_for_cycles"):
        best = [
            r[name]["best_target"]["gap_pct"]
            for m in models.values() for r in m["cases"]
            if r.get(name, {}).get("best_target", {}).get("gap_pct") is not None
        ]  # fmt: skip
        gaps = [
            r[name]["gap_pct"]
            for m in models.values()
            for r in m["cases"]
            if r.get(name, {}).get("gap_pct") is not None
        ]
        mean = round(statistics.mean(gaps), 2) if gaps else None
        out[name] = {"max_gap_pct": max(gaps, default=None), "mean_gap_pct": mean, "cases_compared": len(gaps)}
        if best:
            out[name]["budget_cases_best_target_max_gap_pct"] = max(best)
    out["exhaustive"] = {}
    for name in ("search", "exhaustive", "finn_greedy", "fold_for_cycles"):
        times = [r[name]["seconds_median"] for m in models.values() for r in m["cases"] if name in r]
        out[name]["median_seconds"] = round(statistics.median(times), 4) if times else None
    out["search_within_5_pct"] = all(
        r["search"].get("gap_pct") is not None and r["search"]["gap_pct"] <= 5
        for m in models.values() for r in m["cases"] if "exhaustive" in r and "error" not in r["exhaustive"]
    )  # fmt: skip
    return out


@benchmark("folding-search")
def folding_search_bench(args: argparse.Namespace) -> dict:
    """Resource-aware folding search vs the exhaustive optimum and FINN's greedy rule (II, LUTs, time)."""
    work = Path(args.work) / "folding-search"
    models = {p: _model_figures(p, work, exhaustive=True) for p in MODELS}
    models.update({p: _model_figures(p, work, exhaustive=False) for p in SCALE_MODELS})
    return {
        "family": FAMILY,
        "clock_mhz": CLOCK_MHZ,
        "repeats": REPEATS,
        "models": models,
        "summary": _summary(models),
        "note": "estimates (flows/compile/resources.py) with the stream FIFOs (depth 2) and width converters; "
        "gap_pct: % above the exhaustive optimum, of the II for LUT budgets and of the LUTs for fps targets; "
        "finn_greedy / fold_for_cycles under a budget: bisection over their cycle target",
    }
