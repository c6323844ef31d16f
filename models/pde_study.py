"""The measurements of the PDE paper (Ben-Yair et al., arXiv 2109.00095) on the residual CNNs of
:mod:`qnnflow.models.symmetric`: ``qnnflow analyze pde``.

For each data set (``digits``: digits-symcnn / digits-rescnn; ``mnist``: mnist-symcnn / mnist-rescnn
on the mnist-5k set), each of the standard and the symmetric network and each bit width W = A:

- train it (``qnnflow train``'s loop, a short schedule: ``epochs`` per data set);
- test accuracy and parameter counts (all trainable parameters; the convolution weights with a
  shared tensor counted once);
- per-layer activation RMSE on the test set between the quantized network and the same network
  (same quantized weights, same BatchNorm statistics) with every activation quantizer but the
  input's switched off (ReLU kept): at the residual stream after the stem, after every block and
  after the transitions (the paper's figure plots the same per layer; its data for ResNet56 on
  CIFAR-10: layer 18 0.192 standard vs 0.039 symmetric, last layer 0.138 vs 0.076). Also the RMSE
  relative to the full-precision activations' RMS, since the two networks' streams need not have
  the same magnitude;
- outliers of the full-precision feature maps at the same points (max |x|, kurtosis, fraction beyond
  3 sigma): the columns a TV-smoothing variant is compared on.

Every run is a :class:`Variant`; with ``tv_iters`` > 0 the study also trains each network with that
many TV smoothing steps after every block's inner activation (:mod:`qnnflow.models.tv`, 2..4 bits
only), the "+ TV" rows beside the plain ones. Writes ``pde_study.json``, its tables as ``pde_study.md`` and the
plots of :mod:`qnnflow.models.pde_plots` into ``out``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from qnnflow.models.symmetric import residual_blocks, unique_parameter_count
from torch import nn

DATASETS = {"digits": "digits", "mnist": "mnist"}  # study name -> topology prefix
DEFAULT_EPOCHS = {"digits": 15, "mnist": 3}
PAPER_RMSE = {  # the authors' figure data, ResNet56 on CIFAR-10
    "model": "ResNet56, CIFAR-10",
    "layer 18": {"standard": 0.192, "symmetric": 0.039},
    "last layer": {"standard": 0.138, "symmetric": 0.076},
}


@dataclass(frozen=True)
class Variant:
    dataset: str  # "digits" or "mnist"
    symmetric: bool
    bits: int | None  # W = A; None: the float network
    tv: bool = False  # TV smoothing after each block's inner activation (the study's tv_iters steps)

    @property
    def preset(self) -> str:
        topo = f"{DATASETS[self.dataset]}-{'symcnn' if self.symmetric else 'rescnn'}"
        return f"{topo}-float" if self.bits is None else f"{topo}-w{self.bits}a{self.bits}"

    @property
    def kind(self) -> str:
        return ("symmetric" if self.symmetric else "standard") + (" + TV" if self.tv else "")


def probe_points(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs are the residual stream: the stream quantizers of the top-level
    network (after the stem, the pools and the growth conv) and every block, in forward order."""
    points = []
    blocks = set(map(id, residual_blocks(model)))
    for i, mod in enumerate(model):
        if id(mod) in blocks:
            points.append((f"block {len(points)}", mod))
        elif i > 0 and _is_stream_quant(mod) and isinstance(model[i - 1], nn.BatchNorm2d | nn.AvgPool2d):
            what = "pool" if isinstance(model[i - 1], nn.AvgPool2d) else "conv"
            points.append((f"{what} {len(points)}", mod))
    return points


def _is_stream_quant(mod: nn.Module) -> bool:
    return hasattr(mod, "act_quant") or isinstance(mod, nn.ReLU)


def set_activation_quant(model: nn.Sequential, enabled: bool) -> None:
    """Switch every activation quantizer but the input's on or off (off: ReLU / identity in float)."""
    for mod in list(model.modules()):
        if mod is not model[0] and hasattr(mod, "act_quant"):
            mod.act_quant.disable_quant = not enabled


@torch.no_grad()
def stream_activations(model: nn.Sequential, x: np.ndarray, batch: int = 500) -> list[np.ndarray]:
    """The outputs of :func:`probe_points` on ``x``, float64, one (N, ...) array per point."""
    points = probe_points(model)
    got: list[list[np.ndarray]] = [[] for _ in points]
    hooks = []
    for k, (_, mod) in enumerate(points):
        hooks.append(mod.register_forward_hook(lambda _m, _i, out, k=k: got[k].append(_value(out))))
    try:
        model.eval()
        t = torch.as_tensor(x, dtype=torch.float32)
        for i in range(0, len(t), batch):
            model(t[i : i + batch])
    finally:
        for h in hooks:
            h.remove()
    return [np.concatenate(g).astype(np.float64) for g in got]


def _value(out) -> np.ndarray:
    return (out.value if hasattr(out, "value") else out).detach().numpy()


def layer_errors(model: nn.Sequential, x: np.ndarray) -> list[dict]:
    """Per probe point: RMSE between the quantized activations and the full-precision-activation
    run of the same weights, that RMSE relative to the full-precision RMS, and outlier statistics."""
    names = [n for n, _ in probe_points(model)]
    set_activation_quant(model, True)
    quant = stream_activations(model, x)
    set_activation_quant(model, False)
    try:
        full = stream_activations(model, x)
    finally:
        set_activation_quant(model, True)
    rows = []
    for name, q, f in zip(names, quant, full, strict=True):
        rmse = float(np.sqrt(np.mean((q - f) ** 2)))
        rms = float(np.sqrt(np.mean(f**2)))
        rows.append({"layer": name, "rmse": rmse, "relative_rmse": rmse / rms if rms else None, **outliers(f)})
    return rows


def outliers(a: np.ndarray) -> dict:
    """max |x|, kurtosis (4th standardized moment, 3 for a Gaussian) and the fraction beyond 3 sigma."""
    v = a.ravel()
    mu, sd = float(v.mean()), float(v.std())
    if sd == 0:
        return {"max_abs": float(np.abs(v).max()), "kurtosis": None, "beyond_3sigma": 0.0}
    z = (v - mu) / sd
    return {
        "max_abs": float(np.abs(v).max()),
        "kurtosis": float(np.mean(z**4)),
        "beyond_3sigma": float(np.mean(np.abs(z) > 3)),
    }


def run_variant(
    variant: Variant, split, epochs: int, seed: int, log: Callable[[str], None], tv_iters: int = 1
) -> dict:
    """Train one variant and measure it (``tv_iters`` TV steps when ``variant.tv``)."""
    from qnnflow.models.train import train_model
    from qnnflow.models.zoo import count_parameters, parse_preset

    from qnnflow.config import BuildConfig

    preset = parse_preset(variant.preset)
    cfg = BuildConfig(preset=variant.preset, tv_iters=tv_iters) if variant.tv else None
    start = time.perf_counter()
    result = train_model(preset, split, epochs, seed, log=None, cfg=cfg)
    model = result.model.eval()
    blocks = residual_blocks(model)
    row = {
        **asdict(variant),
        "preset": variant.preset,
        "kind": variant.kind,
        "epochs": epochs,
        "test_accuracy": result.test_accuracy,
        "parameters": count_parameters(model),
        "conv_weights": unique_parameter_count(model),
        "block_conv_weights": sum(unique_parameter_count(b) for b in blocks),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    if variant.bits is not None:
        row["layers"] = layer_errors(model, split.x_test)
    log(
        f"  {variant.preset}: test accuracy {result.test_accuracy:.4f}, {row['parameters']} parameters "
        f"({row['block_conv_weights']} block conv weights), {row['train_seconds']} s"
    )
    return row


def run_study(
    out: Path | str,
    datasets: tuple[str, ...] = ("digits", "mnist"),
    bits: dict[str, tuple[int, ...]] | None = None,
    epochs: dict[str, int] | None = None,
    seed: int = 0,
    data_dir: Path | str | None = None,
    floats: bool = True,
    train_limit: dict[str, int] | None = None,
    tv_iters: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Train and measure standard and symmetric networks on ``datasets`` at ``bits[dataset]`` (W = A);
    write ``pde_study.json`` and plots into ``out``; return the record. ``train_limit[dataset]``: train
    on the first N training images only (the split is shuffled and stratified), for a quick study."""
    from qnnflow.models.datasets import load_dataset
    from qnnflow.models.pde_plots import plot_study, tables_markdown

    bits = bits or {"digits": (2, 3, 4, 8), "mnist": (2, 4)}
    epochs = {**DEFAULT_EPOCHS, **(epochs or {})}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for d in datasets:
        if d not in DATASETS:
            raise ValueError(f"unknown data set {d!r} for the PDE study: expected one of {', '.join(DATASETS)}")
    rows: list[dict] = []
    train_images: dict[str, int] = {}
    for d in datasets:
        split = load_dataset("mnist-5k" if d == "mnist" else d, data_dir if d == "mnist" else None, split_seed=0)
        if (limit := (train_limit or {}).get(d)) is not None:
            split = replace(split, x_train=split.x_train[:limit], y_train=split.y_train[:limit])
        train_images[d] = len(split.y_train)
        log(f"{d}: {split.summary()}, {epochs[d]} epochs per network")
        widths: list[int | None] = [*bits.get(d, ()), *([None] if floats else [])]
        for b in widths:
            with_tv = (False, True) if tv_iters and b is not None and 2 <= b <= 4 else (False,)
            for tv in with_tv:
                for symmetric in (False, True):
                    rows.append(run_variant(Variant(d, symmetric, b, tv), split, epochs[d], seed, log, tv_iters))
                    _write(out, rows, epochs, seed, train_images)  # a partial record survives an interruption
    record = _write(out, rows, epochs, seed, train_images)
    record["plots"] = [str(p) for p in plot_study(record, out)]
    (out / "pde_study.md").write_text(tables_markdown(record))
    (out / "pde_study.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _write(out: Path, rows: list[dict], epochs: dict, seed: int, train_images: dict) -> dict:
    record = {"seed": seed, "epochs": epochs, "train_images": train_images, "paper_rmse": PAPER_RMSE, "runs": rows,
              "tables": tables(rows)}  # fmt: skip
    (out / "pde_study.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def tables(rows: list[dict]) -> dict:
    """Side-by-side standard / symmetric: accuracy and parameters per bit width, RMSE per layer."""
    acc, rmse = [], []
    by = {(r["dataset"], r["bits"], r["symmetric"], r["tv"]): r for r in rows}
    for (d, b, sym, tv), r in by.items():
        if sym:
            continue
        s = by.get((d, b, True, tv))
        acc.append({
            "dataset": d, "bits": b, "tv": tv,
            "standard_accuracy": r["test_accuracy"], "symmetric_accuracy": s and s["test_accuracy"],
            "standard_block_conv_weights": r["block_conv_weights"],
            "symmetric_block_conv_weights": s and s["block_conv_weights"],
            "standard_parameters": r["parameters"], "symmetric_parameters": s and s["parameters"],
        })  # fmt: skip
        if s and "layers" in r:
            for lr, ls in zip(r["layers"], s["layers"], strict=True):
                rmse.append({
                    "dataset": d, "bits": b, "tv": tv, "layer": lr["layer"],
                    "standard_rmse": lr["rmse"], "symmetric_rmse": ls["rmse"],
                    "standard_relative_rmse": lr["relative_rmse"], "symmetric_relative_rmse": ls["relative_rmse"],
                })  # fmt: skip
    return {"accuracy": acc, "rmse": rmse}
