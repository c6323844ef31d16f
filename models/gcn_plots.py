"""Plots of the PDE-GCN study (:mod:`qnnflow.models.gcn_study`): PNG, Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_layer_errors(path: Path, runs: list[dict], data_name: str) -> None:
    """RMSE of x_j (quantized vs full-precision activations) per layer, absolute (left) and relative to the
    RMS of x_j (right): symmetric solid, non-symmetric dashed, one colour per bit width."""
    quantized = [r for r in runs if r["layer_errors"]]
    widths = list(dict.fromkeys(r["bits"] for r in quantized))
    colors = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, key, label in (
        (axes[0], "rmse", "RMSE(x_j), test nodes"),
        (axes[1], "relative_rmse", "RMSE(x_j) / RMS(x_j), test nodes"),
    ):
        for i, b in enumerate(widths):
            color = colors(i / max(1, len(widths) - 1) * 0.85)
            for r in (r for r in quantized if r["bits"] == b):
                errs = [e for e in r["layer_errors"] if e["layer"] > 0]  # x_0 is the same in both: no error
                ax.plot(
                    [e["layer"] for e in errs],
                    [e[key] for e in errs],
                    "o-" if r["variant"] == "symmetric" else "s--",
                    color=color,
                    ms=4,
                    label=f"{r['variant']} w{b}a{b}",
                )
        ax.set(xlabel="diffusion layer j (output x_j)", ylabel=label, yscale="log")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"PDE-GCN on {data_name}: quantized vs full-precision activations, same weights")
    _save(fig, path)


def plot_accuracy(path: Path, runs: list[dict], data_name: str) -> None:
    """Test accuracy against bits for both variants (float drawn as a horizontal line)."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for variant, color in (("symmetric", "tab:blue"), ("non-symmetric", "tab:red")):
        rows = [r for r in runs if r["variant"] == variant]
        q = [r for r in rows if r["bits"] is not None]
        ax.plot([r["bits"] for r in q], [r["test_accuracy"] for r in q], "o-", color=color, label=variant)
        for r in rows:
            if r["bits"] is None:
                ax.axhline(r["test_accuracy"], color=color, ls=":", lw=1, label=f"{variant} float")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r["bits"] for r in runs if r["bits"] is not None}))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel="bits (weights and activations)", ylabel="test accuracy")
    ax.set_title(f"PDE-GCN on {data_name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
