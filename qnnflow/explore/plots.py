"""PNG plots of a sweep: one per objective, every point of a board in one colour per method, the
board's Pareto front as a step line, the front's points named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qnnflow.explore.pareto import DIRECTION, front, label, parse_objective, resolve_metric

_MARKERS = {"ste": "o", "ana": "^", "stochastic-binary": "s", "calibrated": "D"}


def objective_plot(rows: Sequence[dict], objective: str, path: Path) -> Path | None:
    """The plot of ``objective`` (``"y:x"``) into ``path``; None when no point has both metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, x = parse_objective(objective)
    y, x = resolve_metric(rows, y), resolve_metric(rows, x)
    ok = [r for r in rows if r.get("status") == "ok" and r.get(x) is not None and r.get(y) is not None]
    if not ok:
        return None
    boards = sorted({r["board"] for r in ok})
    fig, axes = plt.subplots(1, len(boards), figsize=(6.4 * len(boards), 4.8), squeeze=False)
    for ax, board in zip(axes[0], boards, strict=True):
        mine = [r for r in ok if r["board"] == board]
        for method in sorted({r["method"] for r in mine}):
            pts = [r for r in mine if r["method"] == method]
            ax.scatter([r[x] for r in pts], [r[y] for r in pts], marker=_MARKERS.get(method, "o"), alpha=0.6,
                       label=method)  # fmt: skip
        best = front(mine, y, x)
        ax.step([r[x] for r in best], [r[y] for r in best], where="post" if DIRECTION[x] < 0 else "pre",
                color="black", linewidth=1, label="Pareto front")  # fmt: skip
        for r in best:
            method = "" if r["method"] == "ste" else f" {r['method']}"
            ax.annotate(f"{r['precision']}{method} {r['folding']}", (r[x], r[y]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel(label(rows, x))
        ax.set_ylabel(label(rows, y))
        ax.set_title(board)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_plots(rows: Sequence[dict], objectives: Sequence[str], folder: Path) -> dict[str, Path]:
    made = {}
    for obj in objectives:
        p = objective_plot(rows, obj, folder / f"pareto_{obj.replace(':', '_vs_')}.png")
        if p is not None:
            made[obj] = p
    return made
