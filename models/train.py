"""Quantization-aware training on the CPU, seeded and reproducible, and the train stage of a build.

``train_and_export(cfg, out)`` writes into the build folder:
``model.pt`` (preset + state dict), ``float_model.pt`` (the float baseline of the same topology),
``model.onnx`` (cleaned QONNX), ``metrics.json``, ``test_inputs.npy`` / ``test_labels.npy``
(exactly as the ONNX input expects them), ``config.toml`` and ``train_curves.png`` (loss, calibration
accuracy and, for ANA, the noise schedule per epoch). A folder whose ``metrics.json`` records the same
fingerprint (preset, method and its parameters, seed, epochs, data) is reused, not retrained.

Methods (:class:`qnnflow.config.TrainMethod`): ``ste`` Brevitas QAT with the straight-through
estimator; ``ana`` additive noise annealing (:mod:`qnnflow.models.ana`); ``stochastic-binary``
stochastic-rounding binary weights (:mod:`qnnflow.models.stochastic`). The last two train through
hooks in the same loop (same optimizer, batches and learning-rate schedule) and deliver a Brevitas
model of the zoo, so export and compilation do not depend on the method.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from qnnflow.flows.ir.reference import decisions
from qnnflow.models.datasets import Split, load_dataset
from qnnflow.models.export import check_export, export_qonnx
from qnnflow.models.tv import TVConfig
from qnnflow.models.zoo import LayerBits, Preset, build_model, logits, parse_preset
from torch import nn

from qnnflow import stamps
from qnnflow.config import BuildConfig, TrainMethod
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
    history: list[dict] = field(default_factory=list)  # per epoch: loss, calibration accuracy, method state
    method_info: dict = field(default_factory=dict)  # what the method recorded (metrics.json "method_info")


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy, ties to the lowest class index (as the hardware decides)."""
    return float((decisions(logits(model, x).numpy()) == y).mean())


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def _method_hooks(method: TrainMethod, preset: Preset, split: Split, epochs: int, seed: int, cfg: BuildConfig | None):
    """None for STE (the plain loop), else the method's hooks object (model, start_epoch, before_step,
    before_update, after_update, finish, loss_scale)."""
    if method is TrainMethod.STE:
        return None
    if preset.is_float:
        raise ValueError(f"--method {method.value} trains a quantized preset, not the float baseline {preset.name}")
    if method is TrainMethod.ANA:
        from qnnflow.models.ana import ANAMethod

        return ANAMethod(preset, split, ana_settings(cfg or BuildConfig()), epochs)
    from qnnflow.models.stochastic import StochasticBinaryMethod

    return StochasticBinaryMethod(preset, split, seed)


def tv_config(cfg: BuildConfig | None) -> TVConfig | None:
    """The TV smoothing of a build config (None when off)."""
    if cfg is None or not cfg.tv_iters:
        return None
    return TVConfig(cfg.tv_iters, cfg.tv_gamma)


def ana_settings(cfg: BuildConfig):
    """The ANA parameters of a build config."""
    from qnnflow.models.ana import ANASettings

    return ANASettings(
        noise=cfg.ana_noise,
        strategy=cfg.ana_strategy,
        schedule=cfg.ana_schedule,
        s_forward=cfg.ana_s_forward,
        s_backward=cfg.ana_s_backward,
        t_decay=cfg.ana_t_decay,
        alpha=cfg.ana_alpha,
        staggered=cfg.ana_staggered,
    )


def train_model(
    preset: Preset,
    split: Split,
    epochs: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
    method: TrainMethod = TrainMethod.STE,
    cfg: BuildConfig | None = None,
) -> TrainResult:
    """Train ``preset`` on ``split`` with Adam and a cosine learning rate; report accuracies.

    ``method`` other than STE: the method's model and hooks (ANA's parameters from ``cfg``)."""
    epochs = epochs or preset.epochs
    seed_everything(seed)
    hooks = _method_hooks(method, preset, split, epochs, seed, cfg)
    tv = tv_config(cfg)
    if hooks is None:
        lb = config_layer_bits(cfg)
        model = build_model(preset, split.input_quant.bits, split.input_quant.scale, tv=tv, layer_bits=lb)
    else:
        model = hooks.model
    x = torch.as_tensor(split.x_train)
    y = torch.as_tensor(split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=preset.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        state = {} if hooks is None else hooks.start_epoch(epoch - 1)
        loss = _train_epoch(model, x, y, opt, gen, hooks)
        sched.step()
        cal = accuracy(model, split.x_cal, split.y_cal)
        history.append({"epoch": epoch, "loss": loss, "cal_accuracy": cal, **state})
        if log is not None:
            extra = "".join(f"  {k} {_fmt_state(v)}" for k, v in state.items())
            log(
                f"  {preset.name} [{method.value}] epoch {epoch:>3}/{epochs}  loss {loss:.4f}  "
                f"calibration accuracy {cal:.4f}{extra}  ({time.perf_counter() - start:.1f} s)"
            )
    seconds = time.perf_counter() - start
    info = {"method": TrainMethod.STE.value}
    if hooks is not None:
        model, info = hooks.finish(x)
    model.eval()
    return TrainResult(
        model=model,
        train_accuracy=accuracy(model, split.x_train, split.y_train),
        cal_accuracy=accuracy(model, split.x_cal, split.y_cal),
        test_accuracy=accuracy(model, split.x_test, split.y_test),
        seconds=seconds,
        epochs=epochs,
        history=history,
        method_info=info,
    )


def _train_epoch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, gen: torch.Generator, hooks
) -> float:
    """One pass over the training set in shuffled batches (drawn from ``gen``), with the method's
    hooks (None for STE) around each step; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=gen)
    total = 0.0
    for i in range(0, len(x), BATCH_SIZE):
        idx = order[i : i + BATCH_SIZE]
        if len(idx) < 2:  # batch norm needs two samples
            continue
        if hooks is not None:
            hooks.before_step()
        opt.zero_grad()
        out = model(x[idx])
        loss = nn.functional.cross_entropy(out if hooks is None else out * hooks.loss_scale, y[idx])
        loss.backward()
        if hooks is not None:
            hooks.before_update()
        opt.step()
        if hooks is not None:
            hooks.after_update()
        total += float(loss.detach()) * len(idx)
    return total / len(x)


def _fmt_state(v) -> str:
    if isinstance(v, list):
        return "[" + " ".join(f"{e:.3g}" for e in v) + "]"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def load_checkpoint(path: Path | str) -> nn.Module:
    """Rebuild a model saved by :func:`train_and_export` (``model.pt`` or ``float_model.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    tv = TVConfig(**ckpt["tv"]) if ckpt.get("tv") else None
    lb = ckpt.get("layer_bits")  # per-layer widths (a calibrated candidate, qnnflow.models.calibrate)
    layer_bits = LayerBits(tuple(lb["weights"]), tuple(lb["acts"])) if lb else None
    model = build_model(
        ckpt["preset"], ckpt["input_bits"], ckpt["input_scale"], ckpt.get("unit_scale", False), tv=tv,
        layer_bits=layer_bits,
    )
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def config_layer_bits(cfg: BuildConfig | None) -> LayerBits | None:
    """The per-layer widths the config trains (``layer_bits``), or None for the preset's own."""
    return LayerBits.parse(cfg.layer_bits) if cfg is not None and cfg.layer_bits else None


def _save_checkpoint(
    model: nn.Module,
    preset: Preset,
    split: Split,
    path: Path,
    unit_scale: bool = False,
    tv: TVConfig | None = None,
    layer_bits: LayerBits | None = None,
) -> None:
    torch.save(
        {
            "layer_bits": {"weights": list(layer_bits.weights), "acts": list(layer_bits.acts)} if layer_bits else None,
            "tv": {"iters": tv.iters, "gamma": tv.gamma} if tv else None,  # TV smoothing (qnnflow.models.tv)
            "preset": preset.name,
            "input_bits": split.input_quant.bits,
            "input_scale": split.input_quant.scale,
            "unit_scale": unit_scale,  # ternary weights with scale 1 (an ANA-trained model)
            "state_dict": model.state_dict(),
        },
        path,
    )


def method_params(cfg: BuildConfig) -> dict:
    """The training method and its parameters, as recorded in metrics.json and the fingerprint."""
    params: dict = {"method": cfg.method.value}
    if cfg.method is TrainMethod.ANA:
        params["ana"] = ana_settings(cfg).as_dict()
    if (tv := tv_config(cfg)) is not None:
        params["tv"] = tv.as_dict()
    return params


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
        # an STE fingerprint without TV stays as it was
        **({} if cfg.method is TrainMethod.STE and not cfg.tv_iters else method_params(cfg)),
        **({"layer_bits": cfg.layer_bits} if cfg.layer_bits else {}),
    }


def train_and_export(cfg: BuildConfig, out: Path | str, force: bool = False, float_baseline: bool = True) -> dict:
    """The train stage: train, export, check the export, write the build folder; return metrics."""
    out = Path(out)
    preset = parse_preset(cfg.preset)
    metrics_path = out / "metrics.json"
    fingerprint = _fingerprint(cfg, preset)
    if not force and (old := _recorded_metrics(out, fingerprint)) is not None:
        print(f"  {out}: trained model is up to date ({preset.name}); reusing it")
        return old
    if preset.is_float:
        raise ValueError(f"preset {preset.name} is a float baseline; a build needs a quantized preset")
    split = _load_split(cfg, preset)
    print(f"  data: {split.summary()}")
    out.mkdir(parents=True, exist_ok=True)
    stamps.invalidate(out, "train")  # no stale model, metrics or later results while the folder is rewritten
    cfg.write(out)

    result = train_model(preset, split, cfg.epochs, cfg.seed, method=cfg.method, cfg=cfg)
    _save_checkpoint(
        result.model, preset, split, out / "model.pt", unit_scale=cfg.method is TrainMethod.ANA, tv=tv_config(cfg),
        layer_bits=config_layer_bits(cfg),
    )
    metrics: dict = {
        "preset": preset.name,
        **method_params(cfg),
        "method_info": result.method_info,
        "dataset": split.name,
        "split": {"train": len(split.y_train), "calibration": len(split.y_cal), "test": len(split.y_test)},
        "epochs": result.epochs,
        "train_accuracy": result.train_accuracy,
        "cal_accuracy": result.cal_accuracy,
        "test_accuracy": result.test_accuracy,
        "train_seconds": round(result.seconds, 2),
    }
    if float_baseline:
        metrics.update(_train_float_twin(preset, split, cfg, out))
    metrics["history"] = result.history
    plot_curves(result.history, out / "train_curves.png", f"{preset.name}, --method {cfg.method.value}")
    metrics["export_check"] = _export_and_check(result.model, preset, split, out)
    metrics["fingerprint"] = fingerprint
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _recorded_metrics(out: Path, fingerprint: dict) -> dict | None:
    """The metrics of a build folder trained with the same ``fingerprint`` (and exported), else None."""
    metrics_path = out / "metrics.json"
    if metrics_path.is_file() and (out / "model.onnx").is_file():
        old = json.loads(metrics_path.read_text())
        if old.get("fingerprint") == fingerprint:
            return old
    return None


def _load_split(cfg: BuildConfig, preset: Preset) -> Split:
    """The build's data set (the preset's unless ``cfg.dataset``), whose inputs must fit the preset."""
    dataset = cfg.dataset or preset.dataset
    split = load_dataset(dataset, cfg.data_dir, split_seed=0)
    if tuple(split.input_shape) != tuple(preset.input_shape):
        raise ValueError(
            f"preset {preset.name} takes inputs of shape {tuple(preset.input_shape)}, but data set {dataset} "
            f"has {tuple(split.input_shape)}; choose a preset of that input size (`qnnflow train --list`)"
        )
    return split


def _train_float_twin(preset: Preset, split: Split, cfg: BuildConfig, out: Path) -> dict:
    """Train the float twin of ``preset`` (``float_model.pt``); its metrics, named ``float_*``."""
    twin = preset.float_twin()
    base = train_model(twin, split, cfg.epochs, cfg.seed)
    _save_checkpoint(base.model, twin, split, out / "float_model.pt")
    return {
        "float_test_accuracy": base.test_accuracy,
        "float_cal_accuracy": base.cal_accuracy,
        "float_train_seconds": round(base.seconds, 2),
    }


def _export_and_check(model: nn.Module, preset: Preset, split: Split, out: Path) -> dict:
    """Export ``model.onnx`` and the test set as the ONNX input expects it; check the export
    against PyTorch on the test set (FlowError when a decision differs); the check's record."""
    print(f"  exporting QONNX -> {out / 'model.onnx'}")
    export_qonnx(model, out / "model.onnx", split.input_shape)
    np.save(out / "test_inputs.npy", split.x_test.astype(np.float32))
    np.save(out / "test_labels.npy", split.y_test.astype(np.int64))
    check = check_export(model, out / "model.onnx", split.x_test)
    if not check.ok:
        raise FlowError(
            f"QONNX export of {preset.name} disagrees with PyTorch: {check.argmax_mismatches} of "
            f"{check.samples} test decisions differ, max |logit diff| {check.max_abs_logit_diff:.3g} "
            f"(tolerance {check.logit_tolerance:.3g}, compared in {check.precision})"
        )
    line = f"  export check: {check.samples} test inputs, same argmax, max |logit diff| {check.max_abs_logit_diff:.2e}"
    if check.precision == "float64":
        line += (
            f" in float64 ({check.float32_noise_inputs} inputs differ in float32 only, by up to "
            f"{check.float32_max_abs_logit_diff:.2e}: an activation within float32 noise of a rounding boundary)"
        )
    print(line)
    return check.as_dict()


def plot_curves(history: list[dict], path: Path, title: str) -> Path | None:
    """Loss and calibration accuracy per epoch, and beside them the method's state (ANA: the forward
    noise width of every layer group; stochastic-binary: the mean |latent weight|)."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = [k for k in history[0] if k not in ("epoch", "loss", "cal_accuracy")]
    fig, axes = plt.subplots(1, 2 + len(extra), figsize=(5 * (2 + len(extra)), 3.8))
    ep = [h["epoch"] for h in history]
    axes[0].plot(ep, [h["loss"] for h in history], marker=".")
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    axes[1].plot(ep, [h["cal_accuracy"] for h in history], marker=".", color="tab:green")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="calibration accuracy")
    for ax, key in zip(axes[2:], extra, strict=True):
        values = [h[key] for h in history]
        if isinstance(values[0], list):
            for g in range(len(values[0])):
                ax.plot(ep, [v[g] for v in values], marker=".", label=f"layer group {g + 1}")
            ax.legend(fontsize=8)
        else:
            ax.plot(ep, values, marker=".", color="tab:purple")
        label = {"s_forward": "forward noise width s_f", "mean_abs_latent": "mean |latent w|"}.get(key, key)
        ax.set(xlabel="epoch", ylabel=label, title=label + (" (schedule)" if key == "s_forward" else ""))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
