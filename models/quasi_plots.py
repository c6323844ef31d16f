"""Plots of the quasi-network analysis (:mod:`qnnflow.models.quasi`): PNG, Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mc_error(path: Path, mc, widths) -> None:
    """(a): the quasi network's bias and error against width, with the Monte-Carlo resolution."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for act, color in (("sign", "tab:blue"), ("relu", "tab:orange")):
        rows = [r for r in mc if r["activation"] == act]
        bias = [max(r["normalized_bias"], 1e-4) for r in rows]
        ax.plot(widths, bias, "o-", color=color, label=f"{act}: bias of the quasi network")
        ax.plot(
            widths,
            [r["normalized_error"] for r in rows],
            "x:",
            color=color,
            alpha=0.6,
            label=f"{act}: |quasi - MC mean|",
        )
        ax.plot(widths, [r["resolution"] for r in rows], "--", color="gray", lw=1)
    ax.plot([], [], "--", color="gray", lw=1, label="Monte-Carlo resolution (1/sqrt(networks))")
    ax.set(xscale="log", yscale="log", xlabel="hidden width", ylabel="in output spreads of the binary nets")
    ax.set_title("(a) quasi network vs Monte-Carlo binary networks")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_ntk_spectra(path: Path, spectra, fits, ntk_w) -> None:
    """(b): both NTK spectra with their two fits, semi-log beside log-log."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, color in (("quasi", "tab:blue"), ("real", "tab:red")):
        lam = spectra[name] / spectra[name][0]
        idx = np.arange(1, len(lam) + 1)
        f = fits[name]
        n = f["eigenvalues_used"]
        for ax in axes:
            ax.plot(idx, np.maximum(lam, 1e-16), ".", color=color, ms=3, label=f"{name} (better: {f['better_fit']})")
            ax.plot(
                idx[:n],
                np.exp(f["exponential"]["intercept"] - f["exponential"]["rate"] * idx[:n]),
                "-",
                color=color,
                lw=1,
                alpha=0.8,
            )
            ax.plot(
                idx[:n],
                np.exp(f["power_law"]["intercept"]) * idx[:n] ** (-f["power_law"]["exponent"]),
                ":",
                color=color,
                lw=1.5,
            )
    axes[0].set(
        yscale="log", xlabel="eigenvalue index i", ylabel="lambda_i / lambda_1", title="semi-log (exponential: line)"
    )
    axes[1].set(xscale="log", yscale="log", xlabel="eigenvalue index i", title="log-log (power law: line)")
    floor = min(float(np.min(v[v > 0] / v[0])) for v in spectra.values())
    for ax in axes:
        ax.set_ylim(max(1e-10, floor / 3), 2)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, title="solid: exp. fit, dotted: power fit", title_fontsize=7)
    fig.suptitle(f"(b) empirical NTK spectra, width {ntk_w}")
    _save(fig, path)


def plot_gaps(path: Path, gaps, kernels, widths) -> None:
    """(c): the generalization gap against width, the kernel-ridge gaps as lines."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for binary, color, label in ((True, "tab:blue", "binary weights"), (False, "tab:red", "real weights")):
        m = [np.mean([g["gap"] for g in gaps if g["width"] == w and g["binary"] == binary]) for w in widths]
        s = [np.std([g["gap"] for g in gaps if g["width"] == w and g["binary"] == binary]) for w in widths]
        ax.errorbar(widths, m, yerr=s, fmt="o-", color=color, capsize=3, label=label)
    for k, style in zip(kernels, ("--", ":"), strict=True):
        ax.axhline(k["gap"], color="gray", ls=style, label=f"{k['kernel']} kernel ridge")
    ax.set(xscale="log", xlabel="hidden width", ylabel="train - test accuracy")
    ax.set_title("(c) generalization gap (mean +- std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
