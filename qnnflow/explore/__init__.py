"""``qnnflow explore``: accuracy against resources over a design space, on Ray.

- :mod:`qnnflow.explore.space`: the space file (TOML) and its points;
- :mod:`qnnflow.explore.units`: the cached units of work (train, compile, sim, implement);
- :mod:`qnnflow.explore.engine`: the points as Ray tasks, progress, resuming;
- :mod:`qnnflow.explore.results`, :mod:`~qnnflow.explore.pareto`, :mod:`~qnnflow.explore.plots`,
  :mod:`~qnnflow.explore.report`: the table, the fronts, the plots, the HTML report;
- :mod:`qnnflow.explore.search`: NSGA-II over the same axes for spaces too large to sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from qnnflow.explore.space import DEFAULT_SPACE, Space, load_space


def explore(
    space: Space | Path | str | None = None,
    out: Path | str | None = None,
    *,
    address: str | None = None,
    workers: int | None = None,
    search: str = "grid",
    trials: int = 24,
    population: int = 8,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Sweep (or search) ``space`` into ``out`` (default ``build/explore/<space name>``); write the
    table, the plots and ``report.html``. Returns {"rows", "table", "report", "plots", "seconds"}."""
    from qnnflow.explore import plots, report, results
    from qnnflow.explore.engine import Sweep

    say = say or _say

    if not isinstance(space, Space):
        space = load_space(space)
    out = Path(out) if out is not None else Path("build") / "explore" / space.settings.name
    if search not in ("grid", "nsga2"):
        raise ValueError(f"search must be grid or nsga2, not {search!r}")
    start = time.perf_counter()
    say(f"[explore] {space.source}: {len(space.points)} points ({space.settings.fidelity} fidelity) -> {out}")
    for why in space.skipped:
        say(f"[explore] left out: {why}")
    with Sweep(space, out, address=address, workers=workers, progress=say) as sweep:
        if search == "grid":
            sweep.run(space.points)
        else:
            from qnnflow.explore.search import nsga2

            nsga2(sweep, trials, population, say=say)
    rows = results.write_tables(out, [p.name for p in space.points])
    made = plots.all_plots(rows, space.settings.objectives, out / "plots")
    notes = [f"Space: {space.source}; fidelity: {space.settings.fidelity}; {len(rows)} of {len(space.points)} "
             f"points computed; search: {search}."]  # fmt: skip
    if space.skipped:
        notes.append("Left out: " + "; ".join(space.skipped))
    page = report.write_html(
        out, rows, space.settings.objectives, made, f"qnnflow explore: {space.settings.name}", notes
    )
    secs = time.perf_counter() - start
    bad = [r for r in rows if r["status"] == "failed"]
    say(f"[explore] {len(rows)} points in {out / 'results.csv'} ({len(bad)} failed); report {page}; "
        f"{secs / 60:.1f} min")  # fmt: skip
    return {"rows": rows, "table": out / "results.csv", "report": page, "plots": made, "seconds": secs}


def _say(line: str) -> None:
    print(line, flush=True)  # progress shows up at once also when the output goes to a file


__all__ = ["DEFAULT_SPACE", "explore", "load_space"]
