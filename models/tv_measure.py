"""Feature-map outliers with and without TV smoothing (the paper's TV measurement).

For a trained model (a build folder's ``model.pt``) and its test set: per hidden convolution, the
statistics of the feature maps over every test image, channel and position, at two points:

- ``pre``: the batch-normalized convolution output, before the activation quantizer (what the
  quantizer has to cover; TV changes it through training only);
- ``post``: what the next layer reads, the activation after its TV steps (the TV step acts here).

Each: ``max_abs`` (max |x|), ``kurtosis`` (excess: m4 / m2^2 - 3, 0 for a Gaussian) and
``frac_3sigma`` (the fraction of values farther than 3 standard deviations from the mean), plus the
model's test accuracy. ``qnnflow analyze tv-outliers BUILD_DIR ...`` prints them side by side and
writes ``tv_outliers.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["feature_stats", "outliers", "measure_builds", "table"]


def feature_stats(v: np.ndarray) -> dict[str, float]:
    """max |x|, excess kurtosis and the fraction beyond 3 sigma of all values of ``v``."""
    v = np.asarray(v, dtype=np.float64).ravel()
    mean, std = v.mean(), v.std()
    m2 = np.mean((v - mean) ** 2)
    kurt = float(np.mean((v - mean) ** 4) / m2**2 - 3.0) if m2 > 0 else 0.0
    frac = float(np.mean(np.abs(v - mean) > 3 * std)) if std > 0 else 0.0
    return {"max_abs": float(np.abs(v).max()), "kurtosis": kurt, "frac_3sigma": frac}


def _conv_points(model: nn.Sequential) -> list[tuple[int, nn.Module, nn.Module]]:
    """(layer number, the module whose output is ``pre``, the one whose output is ``post``) per
    hidden convolution: its BatchNorm, and its activation or the last TV module after it."""
    from qnnflow.models.tv import TVSmooth

    mods = list(model)
    points = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.BatchNorm2d) and i + 1 < len(mods):
            post = mods[i + 1]
            if i + 2 < len(mods) and isinstance(mods[i + 2], TVSmooth):
                post = mods[i + 2]
            points.append((len(points) + 1, m, post))
    return points


@torch.no_grad()
def outliers(model: nn.Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> dict:
    """The accuracy of ``model`` on (``x``, ``y``) and the per-layer statistics (module docstring)."""
    model.eval()
    points = _conv_points(model)
    seen: dict[tuple[int, str], list[np.ndarray]] = {}
    hooks = []

    def keep(key):
        return lambda _mod, _inp, out: seen.setdefault(key, []).append(out.detach().numpy())

    for n, pre, post in points:
        for where, mod in (("pre", pre), ("post", post)):
            hooks.append(mod.register_forward_hook(keep((n, where))))
    try:
        preds = []
        for i in range(0, len(x), batch_size):
            preds.append(model(torch.as_tensor(x[i : i + batch_size], dtype=torch.float32)).argmax(1).numpy())
    finally:
        for h in hooks:
            h.remove()
    layers = [
        {"layer": n, **{where: feature_stats(np.concatenate(seen[(n, where)])) for where in ("pre", "post")}}
        for n, _, _ in points
    ]
    return {"test_accuracy": float(np.mean(np.concatenate(preds) == y)), "layers": layers}


def measure_builds(build_dirs: list[Path | str], out: Path | str | None = None) -> list[dict]:
    """:func:`outliers` of each build folder's ``model.pt`` on its ``test_inputs.npy`` /
    ``test_labels.npy``, labelled with its preset and TV setting; written to ``out`` (JSON) if given."""
    from qnnflow.models.train import load_checkpoint

    results = []
    for d in map(Path, build_dirs):
        for name in ("model.pt", "test_inputs.npy", "test_labels.npy"):
            if not (d / name).is_file():
                raise FileNotFoundError(f"{d}: no {name}; a build folder made by `qnnflow train` is expected")
        ckpt = torch.load(d / "model.pt", map_location="cpu", weights_only=False)
        model = load_checkpoint(d / "model.pt")
        x, y = np.load(d / "test_inputs.npy"), np.load(d / "test_labels.npy")
        tv = ckpt.get("tv") or {"iters": 0}
        results.append({"build": str(d), "preset": ckpt["preset"], "tv": tv, **outliers(model, x, y)})
    if out is not None:
        Path(out).write_text(json.dumps(results, indent=1) + "\n")
    return results


def table(results: list[dict]) -> list[str]:
    """Text lines: one per (build, layer), pre- and post-activation statistics."""
    lines = [
        f"{'preset':<18} {'TV':>3} {'acc':>6} {'layer':>5} | {'pre max|x|':>10} {'kurt':>7} {'>3sig':>7} | "
        f"{'post max|x|':>11} {'kurt':>7} {'>3sig':>7}"
    ]
    for r in results:
        for lay in r["layers"]:
            pre, post = lay["pre"], lay["post"]
            lines.append(
                f"{r['preset']:<18} {r['tv'].get('iters', 0):>3} {r['test_accuracy']:>6.4f} {lay['layer']:>5} | "
                f"{pre['max_abs']:>10.3f} {pre['kurtosis']:>7.2f} {pre['frac_3sigma']:>7.4f} | "
                f"{post['max_abs']:>11.3f} {post['kurtosis']:>7.2f} {post['frac_3sigma']:>7.4f}"
            )
    return lines
