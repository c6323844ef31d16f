"""Plots of ``qnnflow analyze pde`` (:mod:`qnnflow.models.pde_study`): per-layer activation RMSE,
standard against symmetric, one panel per data set and bit width; accuracy against bits."""

from __future__ import annotations

from pathlib import Path


def plot_study(record: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    rows = record["tables"]["rmse"]
    panels = sorted({(r["dataset"], r["bits"], r["tv"]) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    if panels:
        fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 7), squeeze=False)
        for col, (d, b, tv) in enumerate(panels):
            sel = [r for r in rows if (r["dataset"], r["bits"], r["tv"]) == (d, b, tv)]
            x = range(1, len(sel) + 1)
            for row, (key, label) in enumerate((("rmse", "RMSE"), ("relative_rmse", "RMSE / RMS"))):
                ax = axes[row][col]
                ax.plot(x, [r[f"standard_{key}"] for r in sel], marker="o", label="standard")
                ax.plot(x, [r[f"symmetric_{key}"] for r in sel], marker="s", label="symmetric")
                ax.set_xticks(list(x), [r["layer"] for r in sel], rotation=60, fontsize=7)
                ax.set(ylabel=f"activation {label}", title=f"{d}, W{b}A{b}{' + TV' if tv else ''}")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        paper = record["paper_rmse"]
        fig.suptitle(
            "quantized vs full-precision activations, same weights\n(paper, "
            f"{paper['model']}: layer 18 {paper['layer 18']['standard']} std / {paper['layer 18']['symmetric']} sym, "
            f"last {paper['last layer']['standard']} / {paper['last layer']['symmetric']})",
            fontsize=9,
        )
        fig.tight_layout()
        path = out / "rmse_per_layer.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    acc = [r for r in record["tables"]["accuracy"] if r["bits"] is not None]
    datasets = sorted({r["dataset"] for r in acc})
    if datasets:
        fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
        for ax, d in zip(axes[0], datasets, strict=True):
            sel = sorted((r for r in acc if r["dataset"] == d), key=lambda r: r["bits"])
            bits = [r["bits"] for r in sel]
            ax.plot(bits, [r["standard_accuracy"] for r in sel], marker="o", label="standard")
            ax.plot(bits, [r["symmetric_accuracy"] for r in sel], marker="s", label="symmetric")
            for r in record["tables"]["accuracy"]:
                if r["dataset"] == d and r["bits"] is None:
                    ax.axhline(r["standard_accuracy"], ls="--", color="tab:blue", lw=0.8, label="standard float")
                    ax.axhline(r["symmetric_accuracy"], ls="--", color="tab:orange", lw=0.8, label="symmetric float")
            ax.set(xlabel="bits (W = A)", ylabel="test accuracy", title=d)
            ax.set_xticks(bits)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "accuracy_vs_bits.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def tables_markdown(record: dict) -> str:
    """The study's side-by-side tables (accuracy and parameters; RMSE per layer) as Markdown, with the
    paper's figure data beside them."""

    def f(v, digits=4):
        return "-" if v is None else f"{v:.{digits}f}"

    lines = [
        "| data set | W/A | standard acc. | symmetric acc. | block conv weights std / sym | parameters std / sym |",
        "|---|---|---|---|---|---|",
    ]
    for r in record["tables"]["accuracy"]:
        wa = "float" if r["bits"] is None else f"W{r['bits']}A{r['bits']}"
        lines.append(
            f"| {r['dataset']}{' + TV' if r['tv'] else ''} | {wa} | {f(r['standard_accuracy'])} | "
            f"{f(r['symmetric_accuracy'])} | "
            f"{r['standard_block_conv_weights']} / {r['symmetric_block_conv_weights']} | "
            f"{r['standard_parameters']} / {r['symmetric_parameters']} |"
        )
    lines += [
        "",
        "| data set | W/A | layer | RMSE std | RMSE sym | RMSE/RMS std | RMSE/RMS sym |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in record["tables"]["rmse"]:
        lines.append(
            f"| {r['dataset']}{' + TV' if r['tv'] else ''} | W{r['bits']}A{r['bits']} | {r['layer']} | "
            f"{f(r['standard_rmse'], 3)} | {f(r['symmetric_rmse'], 3)} | {f(r['standard_relative_rmse'], 3)} | "
            f"{f(r['symmetric_relative_rmse'], 3)} |"
        )
    p = record["paper_rmse"]
    lines += [
        "",
        f"Paper ({p['model']}): layer 18 RMSE {p['layer 18']['standard']} standard / {p['layer 18']['symmetric']} "
        f"symmetric; last layer {p['last layer']['standard']} / {p['last layer']['symmetric']}.",
    ]
    return "\n".join(lines) + "\n"
