"""Quantization-aware training on the CPU, seeded and reproducible, and the train stage of a build.

``train_and_export(cfg, out)`` writes into the build folder:
``model.pt`` (preset + state dict), ``float_model.pt`` (the float baseline of the same topology),
``model.onnx`` (cleaned QONNX), ``metrics.json``, ``test_inputs.npy`` / ``test_labels.npy``
(exactly as the ONNX input expects them) and ``config.toml``. A folder whose ``metrics.json``
records the same fingerprint (preset, seed, epochs, data) is reused, not retrained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from qnnflow.models.datasets import Split, load_dataset
from qnnflow.models.export import check_export, decisions, export_qonnx
from qnnflow.models.zoo import Preset, build_model, logits, parse_preset
from torch import nn

from qnnflow import stamps
from qnnflow.config import BuildConfig
from qnnflow.errors import FlowError

BATCH_SIZE = 64


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module
    train_accuracy: float
    cal_accuracy: float
    test_accuracy: float
    seconds: float
    epochs: int


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy, ties to the lowest class index (as the hardware decides)."""
    return float((decisions(logits(model, x).numpy()) == y).mean())


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def train_model(
    preset: Preset,
    split: Split,
    epochs: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train ``preset`` on ``split`` with Adam and a cosine learning rate; report accuracies."""
    epochs = epochs or preset.epochs
    seed_everything(seed)
    model = build_model(preset, split.input_quant.bits, split.input_quant.scale)
    x = torch.as_tensor(split.x_train)
    y = torch.as_tensor(split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=preset.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), BATCH_SIZE):
            idx = order[i : i + BATCH_SIZE]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if log is not None and (epoch == 1 or epoch == epochs or epoch % max(1, epochs // 10) == 0):
            cal = accuracy(model, split.x_cal, split.y_cal)
            log(
                f"  {preset.name} epoch {epoch:>3}/{epochs}  loss {total / len(x):.4f}  "
                f"calibration accuracy {cal:.4f}  ({time.perf_counter() - start:.1f} s)"
            )
    seconds = time.perf_counter() - start
    model.eval()
    return TrainResult(
        model=model,
        train_accuracy=accuracy(model, split.x_train, split.y_train),
        cal_accuracy=accuracy(model, split.x_cal, split.y_cal),
        test_accuracy=accuracy(model, split.x_test, split.y_test),
        seconds=seconds,
        epochs=epochs,
    )


def load_checkpoint(path: Path | str) -> nn.Module:
    """Rebuild a model saved by :func:`train_and_export` (``model.pt`` or ``float_model.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ckpt["preset"], ckpt["input_bits"], ckpt["input_scale"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _save_checkpoint(model: nn.Module, preset: Preset, split: Split, path: Path) -> None:
    torch.save(
        {
            "preset": preset.name,
            "input_bits": split.input_quant.bits,
            "input_scale": split.input_quant.scale,
            "state_dict": model.state_dict(),
        },
        path,
    )


def _fingerprint(cfg: BuildConfig, preset: Preset) -> dict:
    from qnnflow import __version__

    return {
        "preset": preset.name,
        "seed": cfg.seed,
        "epochs": cfg.epochs or preset.epochs,
        "data_dir": str(cfg.data_dir) if cfg.data_dir else None,
        "dataset": cfg.dataset or preset.dataset,
        "qnnflow": __version__,
        "source": stamps.source_digest("models"),
    }


def train_and_export(
    cfg: BuildConfig, out: Path | str, force: bool = False, float_baseline: bool = True
) -> dict:
    """The train stage: train, export, check the export, write the build folder; return metrics."""
    out = Path(out)
    preset = parse_preset(cfg.preset)
    metrics_path = out / "metrics.json"
    fingerprint = _fingerprint(cfg, preset)
    if not force and metrics_path.is_file() and (out / "model.onnx").is_file():
        old = json.loads(metrics_path.read_text())
        if old.get("fingerprint") == fingerprint:
            print(f"  {out}: trained model is up to date ({preset.name}); reusing it")
            return old
    if preset.is_float:
        raise ValueError(f"preset {preset.name} is a float baseline; a build needs a quantized preset")

    dataset = cfg.dataset or preset.dataset
    split = load_dataset(dataset, cfg.data_dir, split_seed=0)
    if tuple(split.input_shape) != tuple(preset.input_shape):
        raise ValueError(
            f"preset {preset.name} takes inputs of shape {tuple(preset.input_shape)}, but data set {dataset} "
            f"has {tuple(split.input_shape)}; choose a preset of that input size (`qnnflow train --list`)"
        )
    print(f"  data: {split.summary()}")
    out.mkdir(parents=True, exist_ok=True)
    stamps.invalidate(out, "train")  # no stale model, metrics or later results while the folder is rewritten
    cfg.write(out)

    result = train_model(preset, split, cfg.epochs, cfg.seed)
    _save_checkpoint(result.model, preset, split, out / "model.pt")
    metrics: dict = {
        "preset": preset.name,
        "dataset": split.name,
        "split": {"train": len(split.y_train), "calibration": len(split.y_cal), "test": len(split.y_test)},
        "epochs": result.epochs,
        "train_accuracy": result.train_accuracy,
        "cal_accuracy": result.cal_accuracy,
        "test_accuracy": result.test_accuracy,
        "train_seconds": round(result.seconds, 2),
    }
    if float_baseline:
        twin = preset.float_twin()
        base = train_model(twin, split, cfg.epochs, cfg.seed)
        _save_checkpoint(base.model, twin, split, out / "float_model.pt")
        metrics.update(
            float_test_accuracy=base.test_accuracy,
            float_cal_accuracy=base.cal_accuracy,
            float_train_seconds=round(base.seconds, 2),
        )

    print(f"  exporting QONNX -> {out / 'model.onnx'}")
    export_qonnx(result.model, out / "model.onnx", split.input_shape)
    np.save(out / "test_inputs.npy", split.x_test.astype(np.float32))
    np.save(out / "test_labels.npy", split.y_test.astype(np.int64))
    check = check_export(result.model, out / "model.onnx", split.x_test)
    metrics["export_check"] = check.as_dict()
    if not check.ok:
        raise FlowError(
            f"QONNX export of {preset.name} disagrees with PyTorch: {check.argmax_mismatches} of "
            f"{check.samples} test decisions differ, max |logit diff| {check.max_abs_logit_diff:.3g} "
            f"(tolerance {check.logit_tolerance:.3g})"
        )
    print(f"  export check: {check.samples} test inputs, same argmax, max |logit diff| {check.max_abs_logit_diff:.2e}")
    metrics["fingerprint"] = fingerprint
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
