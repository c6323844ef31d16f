"""Plots of the boundary study: PCA-slice maps and bit-width sweeps (PNG, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from qnnflow.models.boundary_metrics import PCASlice, boundary_mask, junction_mask  # noqa: E402

# Class colours: tab10 with its grey (index 7) replaced by navy, so that no class looks like the
# hatched "flipped" overlay or the black / red boundaries; more classes take tab20's light shades.
_CLASS_COLORS = [c if i != 7 else (0.0, 0.0, 0.5) for i, c in enumerate(plt.get_cmap("tab10").colors)] + [
    c for i, c in enumerate(plt.get_cmap("tab20").colors) if i % 2 == 1 and i != 15
]


def _class_cmap(n_classes: int) -> ListedColormap:
    if n_classes > len(_CLASS_COLORS):
        raise ValueError(f"at most {len(_CLASS_COLORS)} classes can be told apart in a slice plot, not {n_classes}")
    return ListedColormap(_CLASS_COLORS[:n_classes])


def _label_image(ax, s: PCASlice, labels: np.ndarray, n_classes: int) -> None:
    cmap = _class_cmap(n_classes)
    ax.imshow(
        labels,
        origin="lower",
        extent=(*s.u_range, *s.v_range),
        cmap=cmap,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        alpha=0.45,
        aspect="auto",
        interpolation="nearest",
    )


def _hatch_overlay(ax, s: PCASlice, mask: np.ndarray) -> None:
    """Cells where ``mask`` holds, hatched (no fill), so the class colour underneath stays readable."""
    u = np.linspace(*s.u_range, mask.shape[1])
    v = np.linspace(*s.v_range, mask.shape[0])
    ax.contourf(u, v, mask.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])


def _class_legend(ax, labels: list[np.ndarray], n_classes: int):
    from matplotlib.patches import Patch

    present = sorted(set(np.unique(np.concatenate([lab.ravel() for lab in labels])).tolist()))
    cmap = _class_cmap(n_classes)
    handles = [Patch(facecolor=cmap(int(c)), alpha=0.6, label=f"class {int(c)}") for c in present]
    return ax.legend(handles=handles, loc="lower left", fontsize=6, ncol=2, title="label", title_fontsize=6)


def _mask_overlay(ax, s: PCASlice, mask: np.ndarray, color: str, alpha: float = 1.0) -> None:
    img = np.ma.masked_where(~mask, np.ones(mask.shape))
    ax.imshow(
        img,
        origin="lower",
        extent=(*s.u_range, *s.v_range),
        cmap=ListedColormap([color]),
        alpha=alpha,
        aspect="auto",
        interpolation="nearest",
    )


def _junction_points(ax, s: PCASlice, mask: np.ndarray, **kw) -> None:
    r, c = np.nonzero(mask)
    ax.scatter(s.u[c], s.v[r], s=10, linewidths=0.8, **kw)


def plot_slice_comparison(
    s: PCASlice,
    ref_labels: np.ndarray,
    labels: np.ndarray,
    radius: int,
    path: Path | str,
    title: str,
    points: np.ndarray | None = None,
    n_classes: int = 10,
) -> Path:
    """Left: the reference's labels, boundary and junctions. Right: the other model's labels, with
    both boundaries (reference black, other red), label flips shaded and junctions marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    ref_b, b = boundary_mask(ref_labels, radius), boundary_mask(labels, radius)
    ref_j, j = junction_mask(ref_labels, radius), junction_mask(labels, radius)
    ax = axes[0]
    _label_image(ax, s, ref_labels, n_classes)
    _mask_overlay(ax, s, ref_b, "black")
    _junction_points(ax, s, ref_j, marker="x", color="blue", label=f"junction cells ({ref_j.sum()})")
    ax.set_title("reference")
    ax = axes[1]
    _label_image(ax, s, labels, n_classes)
    _hatch_overlay(ax, s, ref_labels != labels)
    _mask_overlay(ax, s, ref_b, "black")
    _mask_overlay(ax, s, b, "red", alpha=0.7)
    _junction_points(
        ax, s, j, marker="o", facecolors="none", edgecolors="magenta", label=f"junction cells ({j.sum()})"
    )
    ax.set_title(f"{title}\nblack: reference boundary, red: this boundary, hatched: flipped cells", fontsize=9)
    for ax in axes:
        if points is not None:
            uv = s.project(points)
            ax.scatter(uv[:, 0], uv[:, 1], s=3, c="k", alpha=0.25, linewidths=0)
        ax.set_xlabel("PC 1")
        ax.add_artist(_class_legend(ax, [ref_labels, labels], n_classes))
        ax.legend(loc="upper right", fontsize=7)
    axes[0].set_ylabel("PC 2")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sweep(sweep: list[dict], choices: dict, path: Path | str) -> Path:
    """Accuracy, flip rate, slice Jaccard distance and median boundary shift against bit width.

    ``sweep`` rows have ``bits``, ``granularity``, ``cal`` and ``test`` metric dicts; ``choices``
    maps granularity to ``{"boundary": bits, "accuracy": bits}`` (the stopping rules' picks).
    """
    panels = [
        ("accuracy", "accuracy"),
        ("flip_rate", "label flip rate vs reference"),
        ("slice_jaccard_distance", "slice boundary Jaccard distance"),
        ("median_boundary_shift", "median boundary shift"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for (key, label), ax in zip(panels, axes.flat, strict=True):
        for gran, color in (("per-tensor", "C0"), ("per-channel", "C1")):
            rows = sorted((r for r in sweep if r["granularity"] == gran), key=lambda r: r["bits"])
            if not rows:
                continue
            bits = [r["bits"] for r in rows]
            for split, style in (("cal", "--"), ("test", "-")):
                ax.plot(
                    bits,
                    [r[split][key] for r in rows],
                    style,
                    color=color,
                    marker="o",
                    ms=3,
                    label=f"{gran} {'calibration' if split == 'cal' else 'held-out'}",
                )
            pick = choices.get(gran, {})
            for rule, marker in (("boundary", "*"), ("accuracy", "s")):
                if rule in pick:
                    row = next(r for r in rows if r["bits"] == pick[rule])
                    ax.plot(
                        [pick[rule]],
                        [row["test"][key]],
                        marker,
                        color=color,
                        ms=11,
                        mfc="none",
                        label=f"{gran}: {rule} rule" if key == "accuracy" else None,
                    )
        if key == "accuracy" and sweep:
            ax.axhline(sweep[0]["test"]["accuracy_ref"], color="k", lw=0.8, label="reference (held-out)")
        if key in ("flip_rate", "median_boundary_shift"):
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("weight bits (PTQ-W, round to nearest)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cal_vs_test(sweep: list[dict], path: Path | str) -> Path:
    """Calibration against held-out slice Jaccard distance, one point per sweep row."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for gran, color in (("per-tensor", "C0"), ("per-channel", "C1")):
        rows = [r for r in sweep if r["granularity"] == gran]
        if rows:
            x = [r["cal"]["slice_jaccard_distance"] for r in rows]
            y = [r["test"]["slice_jaccard_distance"] for r in rows]
            ax.scatter(x, y, color=color, label=gran)
            for r, xi, yi in zip(rows, x, y, strict=True):
                ax.annotate(str(r["bits"]), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("calibration slice Jaccard distance")
    ax.set_ylabel("held-out slice Jaccard distance")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sensitivity(sens: dict[str, list[dict]], path: Path | str) -> Path:
    """The boundary rule's chosen width (solid) and its held-out flips (dashed, right axis) against
    each tolerance, one line per sweep (PTQ-W per granularity, W+A)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("jaccard_tol", "Jaccard tolerance"), ("flip_tol", "flip-rate tolerance"))
    for ax, (vary, label) in zip(axes, panels, strict=True):
        right = ax.twinx()
        for k, (name, rows) in enumerate(sens.items()):
            rs = [r for r in rows if r["vary"] == vary]
            x = [r["tol"] for r in rs]
            ax.plot(x, [r["bits"] for r in rs], "-o", ms=3, color=f"C{k}", label=f"{name}: chosen bits")
            right.plot(x, [r["test_flips"] for r in rs], "--", color=f"C{k}", label=f"{name}: held-out flips")
        ax.set_xlabel(label + " (the other at its recorded value)")
        ax.set_ylabel("chosen bit width")
        right.set_ylabel("held-out flips of the choice")
        for a in (ax, right):  # widths and flips are counts
            a.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if vary == "jaccard_tol":
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = right.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="upper right")
    fig.suptitle("stopping-rule sensitivity to its tolerances")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
