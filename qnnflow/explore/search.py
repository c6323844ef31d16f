"""Multi-objective search over a space too large to sweep: NSGA-II (Optuna's sampler).

The axes are the space's own (every value its grids name); a trial is one combination, computed
by the same engine and cache as a grid sweep, so the search's points land in the same table. A
combination the space does not hold (left out as untrainable, or in no grid) is told to Optuna as
failed and costs nothing. The two objectives are the space's first objective (``y:x``), each in
its direction; a point without both metrics (failed, not implemented at this fidelity) is failed.
"""

from __future__ import annotations

from collections.abc import Callable

from qnnflow.explore.engine import Sweep
from qnnflow.explore.pareto import DIRECTION, parse_objective, resolve_metric
from qnnflow.explore.space import Point

AXES = ("topology", "precision", "method", "cycles", "fps", "board", "clock_mhz", "seed")


def nsga2(sweep: Sweep, trials: int, population: int = 8, seed: int = 0,
          say: Callable[[str], None] = print) -> list[dict]:  # fmt: skip
    """Run ``trials`` trials in generations of ``population`` (each generation's points in parallel);
    return the rows of every point computed."""
    import optuna

    if trials < 1 or population < 2:
        raise ValueError(f"a search needs at least 1 trial and a population of 2, not {trials} and {population}")
    space = sweep.space
    by_values = {tuple(getattr(p, a) for a in AXES): p for p in space.points}
    choices = {a: sorted({getattr(p, a) for p in space.points}, key=repr) for a in AXES}
    y, x = parse_objective(space.settings.objectives[0])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize" if DIRECTION[m] > 0 else "minimize" for m in (y, x)],
        sampler=optuna.samplers.NSGAIISampler(population_size=population, seed=seed),
    )
    rows: dict[str, dict] = {}
    told = 0
    while told < trials:
        batch: list[tuple[object, Point]] = []
        while len(batch) < min(population, trials - told):
            t = study.ask()
            key = tuple(t.suggest_categorical(a, choices[a]) for a in AXES)
            if key in by_values:
                batch.append((t, by_values[key]))
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
                told += 1
                if told >= trials:
                    break
        points = list({p.name: p for _, p in batch}.values())
        for r in sweep.run(points):
            rows[r["name"]] = r
        ym, xm = resolve_metric(list(rows.values()), y), resolve_metric(list(rows.values()), x)
        for t, p in batch:
            r = rows.get(p.name, {})
            if r.get("status") == "ok" and r.get(ym) is not None and r.get(xm) is not None:
                study.tell(t, [float(r[ym]), float(r[xm])])
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            told += 1
        say(f"[explore] search: {told}/{trials} trials, {len(rows)} distinct points computed")
    return list(rows.values())
