"""The calibration stage's picture: every candidate's boundary distance against its estimated cost."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_candidates(record: dict, path: Path | str) -> Path:
    """Two panels, calibration and held-out: slice Jaccard distance against LUT4 of each priced
    candidate (uniform: circles, named; per-layer: triangles), passing the boundary rule filled,
    the two rules' choices ringed, the Jaccard tolerance dashed."""
    path = Path(path)
    cands = [c for c in record["candidates"] if c["resources"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, split in zip(axes, ("cal", "test"), strict=True):
        for c in cands:
            x, y = c["resources"]["LUT4"], c[split]["slice_jaccard_distance"]
            marker = "o" if c["origin"] == "uniform" else "^"
            color = "tab:blue" if c["boundary_ok"] else "tab:grey"
            ax.scatter(x, y, marker=marker, s=36, color=color if c["boundary_ok"] else "none", edgecolors=color)
            if c["origin"] == "uniform":
                ax.annotate(c["name"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        rules = (("choice", "tab:red", "boundary rule"), ("accuracy_choice", "tab:green", "accuracy rule"))
        for key, color, label in rules:
            ch = record[key]
            if ch["resources"]:
                ax.scatter(ch["resources"]["LUT4"], ch[split]["slice_jaccard_distance"], s=160, facecolors="none",
                           edgecolors=color, linewidths=1.8, label=f"{label}: {ch['name']}")  # fmt: skip
        if split == "cal":
            ax.axhline(record["settings"]["jaccard_tol"], color="k", ls="--", lw=0.8, label="Jaccard tolerance")
        ax.set_xlabel("estimated LUT4 (compiler)")
        ax.set_title("calibration split (the rules see this)" if split == "cal" else "held-out test split")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("slice boundary Jaccard distance to float")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{record['topology']}: post-training candidates (filled: within the boundary tolerances)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
