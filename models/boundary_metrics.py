"""Decision-boundary geometry of a classifier against a reference classifier.

The metrics follow the descriptions in Kiselev, "Boundary-Aware Quantization: Finite-Scale
Decision Geometry of Neural Classifiers" (arXiv 2607.01478). Only the paper's abstract was at
hand, so every metric is defined here, precisely, in its own docstring, and every parameter is
an explicit argument that the caller records next to the result.

A *classifier* is any callable ``f(x) -> logits`` mapping a float tensor of shape ``(N, *S)`` to
``(N, C)``; torch modules are put in eval mode. Inputs are flattened to ``D = prod(S)`` only for
the geometry (norms, angles, the PCA slice); models always see the original shape ``S``.

Notation used below. For a point ``x`` the *reference pair* ``(i, j)`` is the reference model's
top-1 and runner-up class at ``x``. For any model ``f``, ``m_f(x) = f_i(x) - f_j(x)`` is its logit
margin on that pair and ``g_f(x) = grad_x m_f(x)``. The pair's boundary near ``x`` is the level set
``m_f = 0``; its first-order (linearized) signed distance from ``x`` is ``m_f(x) / ||g_f(x)||``,
which is exact for a linear classifier. For models with quantized activations (Brevitas QAT), the
gradient is the one torch computes, i.e. through the straight-through estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

Classifier = Callable[[torch.Tensor], torch.Tensor]


def _eval(model: Classifier) -> None:
    if isinstance(model, torch.nn.Module):
        model.eval()


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.float()


@torch.no_grad()
def predict_logits(model: Classifier, x: np.ndarray | torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """The logits ``(N, C)`` of ``model`` on ``x`` as a numpy array, computed in batches."""
    _eval(model)
    t = _as_tensor(x)
    outs = [model(t[k : k + batch_size]) for k in range(0, len(t), batch_size)]
    out = torch.cat(outs) if outs else torch.empty(0, 0)
    if out.ndim != 2:
        raise ValueError(f"a classifier must return logits of shape (N, C), found shape {tuple(out.shape)}")
    return out.detach().cpu().numpy()


def top_pair(logits: np.ndarray) -> np.ndarray:
    """The top-1 and runner-up class of each row, shape ``(N, 2)``; ties resolve to the lower index."""
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"top_pair needs logits of shape (N, C) with C >= 2, found {logits.shape}")
    order = np.argsort(-logits, axis=1, kind="stable")
    return order[:, :2]


def pair_margin_and_gradient(
    model: Classifier, x: np.ndarray | torch.Tensor, pair: np.ndarray, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """``m(x) = f_i(x) - f_j(x)`` and its input gradient (flattened, ``(N, D)``) for the given pairs.

    ``pair`` is ``(N, 2)``: column 0 is ``i``, column 1 is ``j``. Samples must not interact in the
    forward pass (eval mode), so the gradient of the batch sum is the per-sample gradient.
    """
    _eval(model)
    t = _as_tensor(x)
    pair = np.asarray(pair)
    if pair.shape != (len(t), 2):
        raise ValueError(f"pair must have shape ({len(t)}, 2), found {pair.shape}")
    margins, grads = [], []
    for k in range(0, len(t), batch_size):
        xb = t[k : k + batch_size].detach().clone().requires_grad_(True)
        pb = torch.as_tensor(pair[k : k + batch_size], dtype=torch.long)
        with torch.enable_grad():
            z = model(xb)
            m = z.gather(1, pb[:, :1]).squeeze(1) - z.gather(1, pb[:, 1:]).squeeze(1)
            (g,) = torch.autograd.grad(m.sum(), xb, allow_unused=True)
        if g is None:  # the output does not depend on the input (constant model)
            g = torch.zeros_like(xb)
        margins.append(m.detach().cpu().numpy())
        grads.append(g.detach().reshape(len(xb), -1).cpu().numpy())
    return np.concatenate(margins), np.concatenate(grads)


@dataclass(frozen=True)
class MarginField:
    """A model's margins on the reference pairs of a set of points (see the module docstring)."""

    logits: np.ndarray  # (N, C)
    pair: np.ndarray  # (N, 2) reference pair (i, j)
    margin: np.ndarray  # (N,) m_f = f_i - f_j
    grad: np.ndarray  # (N, D) grad_x m_f
    eps: float  # gradient norms below eps count as eps (no division by zero)

    @property
    def grad_norm(self) -> np.ndarray:
        return np.linalg.norm(self.grad, axis=1)

    @property
    def signed_distance(self) -> np.ndarray:
        """First-order signed distance ``m_f / max(||g_f||, eps)`` to the pair's boundary."""
        return self.margin / np.maximum(self.grad_norm, self.eps)


def margin_field(
    model: Classifier, x: np.ndarray | torch.Tensor, pair: np.ndarray | None = None, eps: float = 1e-12
) -> MarginField:
    """The margin field of ``model`` on ``x``; ``pair=None`` uses the model's own top pair."""
    z = predict_logits(model, x)
    if pair is None:
        pair = top_pair(z)
    m, g = pair_margin_and_gradient(model, x, pair)
    return MarginField(z, pair, m, g, eps)


def margin_radii(model: Classifier, x: np.ndarray | torch.Tensor, eps: float = 1e-12) -> np.ndarray:
    """Local logit-margin radius of each point: ``(f_top1 - f_top2) / ||grad_x (f_top1 - f_top2)||``.

    The pair is the model's own top two classes, so the radius is >= 0: the first-order
    distance from ``x`` to the nearest pairwise boundary of its predicted class (exact for a
    linear classifier and the boundary between its top two classes).
    """
    return margin_field(model, x, eps=eps).signed_distance


def boundary_shift(ref: MarginField, other: MarginField) -> np.ndarray:
    """First-order boundary displacement at each point: ``|d_other - d_ref|``.

    ``d_f = m_f / ||g_f||`` is the linearized signed distance from the point to the boundary of
    the *reference pair* ``(i, j)`` of model ``f``; the difference is how far that boundary moved,
    measured along the normal. For two linear classifiers with the same normal ``w`` whose pair
    offsets differ by ``delta``, it is exactly ``|delta| / ||w||`` at every point.
    """
    _same_pairs(ref, other)
    return np.abs(other.signed_distance - ref.signed_distance)


def normal_angles_deg(ref: MarginField, other: MarginField) -> np.ndarray:
    """Angle in degrees between ``g_ref`` and ``g_other``, the normals of the reference pair's boundary.

    A zero gradient (e.g. a dead ReLU region) gives NaN: there is no normal to compare.
    """
    _same_pairs(ref, other)
    na, nb = ref.grad_norm, other.grad_norm
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("nd,nd->n", ref.grad, other.grad) / (na * nb)
    cos = np.where((na > ref.eps) & (nb > other.eps), np.clip(cos, -1.0, 1.0), np.nan)
    return np.degrees(np.arccos(cos))


def _same_pairs(a: MarginField, b: MarginField) -> None:
    if a.pair.shape != b.pair.shape or not np.array_equal(a.pair, b.pair):
        raise ValueError("both margin fields must be taken on the same reference pairs (pass pair=ref.pair)")


# -- the low-margin band ---------------------------------------------------------------------------
def band_metrics(ref: MarginField, other: MarginField, quantile: float) -> dict[str, float | int]:
    """Flip rates inside and outside the low-margin band of the reference model.

    The band holds the points whose reference margin radius (``d_ref``, >= 0 since the pair is
    the reference's own top two) is at most the ``quantile``-quantile of all radii (numpy's
    linear interpolation). A *label flip* is ``argmax f_other != argmax f_ref``; a *pair-order
    flip* is ``f_other,i < f_other,j`` for the reference pair ``(i, j)``: the order of the
    reference's top two classes is reversed (whether or not a third class overtakes both; a tie
    ``f_i == f_j`` does not count).
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"band quantile must be in (0, 1], found {quantile}")
    _same_pairs(ref, other)
    radius = ref.signed_distance
    threshold = float(np.quantile(radius, quantile))
    band = radius <= threshold
    label_flip = np.argmax(other.logits, axis=1) != np.argmax(ref.logits, axis=1)
    pair_flip = other.margin < 0

    def rate(flags: np.ndarray, where: np.ndarray) -> float:
        return float(flags[where].mean()) if where.any() else float("nan")

    return {
        "band_quantile": quantile,
        "band_radius_threshold": threshold,
        "band_size": int(band.sum()),
        "outside_size": int((~band).sum()),
        "band_flip_rate": rate(label_flip, band),
        "outside_flip_rate": rate(label_flip, ~band),
        "band_pair_order_flip_rate": rate(pair_flip, band),
        "outside_pair_order_flip_rate": rate(pair_flip, ~band),
    }


# -- the 2-D PCA slice -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PCASlice:
    """The plane through ``mean`` spanned by the rows of ``basis`` (orthonormal), rasterized.

    Cell ``(r, c)`` (row r = second coordinate v, column c = first coordinate u) is the point
    ``mean + u_c basis[0] + v_r basis[1]``, with ``u_c = linspace(*u_range, grid)[c]`` and
    ``v_r = linspace(*v_range, grid)[r]``.
    """

    mean: np.ndarray  # (D,)
    basis: np.ndarray  # (2, D)
    u_range: tuple[float, float]
    v_range: tuple[float, float]
    grid: int
    input_shape: tuple[int, ...]

    @property
    def u(self) -> np.ndarray:
        return np.linspace(*self.u_range, self.grid)

    @property
    def v(self) -> np.ndarray:
        return np.linspace(*self.v_range, self.grid)

    def points(self) -> np.ndarray:
        """All grid points in the model's input shape, row-major: ``(grid * grid, *input_shape)``."""
        uu, vv = np.meshgrid(self.u, self.v)  # (grid, grid), rows follow v
        flat = self.mean[None, :] + uu.reshape(-1, 1) * self.basis[0] + vv.reshape(-1, 1) * self.basis[1]
        return flat.reshape(-1, *self.input_shape).astype(np.float32)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Coordinates ``(u, v)`` of points ``x`` (any shape ``(N, *S)``) in the plane, ``(N, 2)``."""
        return (np.asarray(x).reshape(len(x), -1) - self.mean) @ self.basis.T

    def params(self) -> dict:
        return {"grid": self.grid, "u_range": list(self.u_range), "v_range": list(self.v_range)}


def pca_slice(x: np.ndarray, grid: int, pad: float = 0.1) -> PCASlice:
    """The slice through the mean of ``x`` along its top two principal directions.

    The extent covers the projected points, widened by ``pad`` times the span on every side.
    Each principal direction's sign is fixed so that its largest-magnitude entry is positive.
    """
    if grid < 3:
        raise ValueError(f"the slice grid needs at least 3 cells per side, found {grid}")
    if len(x) < 3:
        raise ValueError(f"a PCA slice needs at least 3 points, found {len(x)}")
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    basis = vt[:2].copy()
    for k in range(2):
        if basis[k, np.argmax(np.abs(basis[k]))] < 0:
            basis[k] = -basis[k]
    proj = (flat - mean) @ basis.T
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    span = hi - lo
    lo, hi = lo - pad * span, hi + pad * span
    return PCASlice(
        mean, basis, (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), grid, tuple(x.shape[1:])
    )


def slice_labels(model: Classifier, s: PCASlice) -> np.ndarray:
    """The predicted label of every cell of the slice, shape ``(grid, grid)``."""
    return np.argmax(predict_logits(model, s.points()), axis=1).reshape(s.grid, s.grid)


def label_count_map(labels: np.ndarray, radius: int) -> np.ndarray:
    """For each cell, the number of distinct labels in its ``(2 radius + 1)^2`` neighbourhood.

    The neighbourhood is the square window centred on the cell, clipped at the grid's edge.
    """
    if radius < 1:
        raise ValueError(f"the neighbourhood radius must be at least 1 cell, found {radius}")
    size = 2 * radius + 1
    count = np.zeros(labels.shape, dtype=np.int64)
    for c in np.unique(labels):
        present = ndimage.maximum_filter((labels == c).astype(np.uint8), size=size, mode="constant", cval=0)
        count += present.astype(np.int64)
    return count


def boundary_mask(labels: np.ndarray, radius: int = 1) -> np.ndarray:
    """Cells whose neighbourhood (see :func:`label_count_map`) holds more than one label."""
    return label_count_map(labels, radius) > 1


def junction_mask(labels: np.ndarray, radius: int = 1) -> np.ndarray:
    """Multiclass junction cells: neighbourhoods that hold three or more labels."""
    return label_count_map(labels, radius) >= 3


def count_regions(mask: np.ndarray) -> int:
    """Number of 8-connected regions of a boolean mask (a junction region counts once)."""
    _, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    return int(n)


def jaccard_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 - |a & b| / |a | b|`` of two boolean masks; 0 when both are empty."""
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape, found {a.shape} and {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 0.0
    return float(1.0 - np.logical_and(a, b).sum() / union)


def slice_comparison(ref_labels: np.ndarray, other_labels: np.ndarray, radius: int) -> dict[str, float | int]:
    """Boundary Jaccard distance, grid label flips and junction counts of two labelled slices."""
    if ref_labels.shape != other_labels.shape:
        raise ValueError(f"slices must have the same grid, found {ref_labels.shape} and {other_labels.shape}")
    ba, bb = boundary_mask(ref_labels, radius), boundary_mask(other_labels, radius)
    ja, jb = junction_mask(ref_labels, radius), junction_mask(other_labels, radius)
    flips = ref_labels != other_labels
    return {
        "slice_jaccard_distance": jaccard_distance(ba, bb),
        "slice_boundary_cells_ref": int(ba.sum()),
        "slice_boundary_cells": int(bb.sum()),
        "slice_flip_cells": int(flips.sum()),
        "slice_flip_rate": float(flips.mean()),
        "junction_cells_ref": int(ja.sum()),
        "junction_cells": int(jb.sum()),
        "junction_regions_ref": count_regions(ja),
        "junction_regions": count_regions(jb),
    }


# -- everything at once ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BoundaryParams:
    """Every parameter of the metrics; recorded in ``boundary.json``."""

    grid: int = 160  # slice cells per side
    pad: float = 0.1  # slice extent beyond the data, as a fraction of the data's span
    radius: int = 1  # neighbourhood half-width in cells (1: a 3x3 window)
    band_quantile: float = 0.1  # the low-margin band: reference radius <= this quantile
    eps: float = 1e-12  # gradient norms below this are treated as this

    def __post_init__(self) -> None:
        if self.grid < 3:
            raise ValueError(f"grid must be at least 3, found {self.grid}")
        if self.radius < 1:
            raise ValueError(f"radius must be at least 1, found {self.radius}")
        if not 0.0 < self.band_quantile <= 1.0:
            raise ValueError(f"band_quantile must be in (0, 1], found {self.band_quantile}")


class ReferenceView:
    """The reference model's quantities on one data set and its slice, computed once and reused."""

    def __init__(self, model: Classifier, x: np.ndarray, params: BoundaryParams, s: PCASlice | None = None):
        self.model = model
        self.x = x
        self.params = params
        self.field = margin_field(model, x, eps=params.eps)
        self.slice = s if s is not None else pca_slice(x, params.grid, params.pad)
        self.slice_labels = slice_labels(model, self.slice)

    def compare(self, other: Classifier, y: np.ndarray | None = None) -> dict[str, float | int]:
        """All metrics of ``other`` against the reference on this data set (see each function)."""
        of = margin_field(other, self.x, pair=self.field.pair, eps=self.params.eps)
        shift = boundary_shift(self.field, of)
        angles = normal_angles_deg(self.field, of)
        ref_pred, pred = np.argmax(self.field.logits, 1), np.argmax(of.logits, 1)
        out: dict[str, float | int] = {
            "n_points": len(self.x),
            "flip_rate": float(np.mean(ref_pred != pred)),
            "flips": int(np.sum(ref_pred != pred)),
            "pair_order_flip_rate": float(np.mean(of.margin < 0)),
            "median_boundary_shift": float(np.median(shift)),
            "mean_boundary_shift": float(np.mean(shift)),
            "median_normal_angle_deg": _nanmedian(angles),
            "mean_normal_angle_deg": _nanmean(angles),
            "median_margin_radius_ref": float(np.median(self.field.signed_distance)),
            # the model's own top pair (>= 0), as margin_radii defines it, not the reference's pair
            "median_margin_radius": float(np.median(margin_radii(other, self.x, eps=self.params.eps))),
        }
        if y is not None:
            out["accuracy_ref"] = float(np.mean(ref_pred == y))
            out["accuracy"] = float(np.mean(pred == y))
        out.update(band_metrics(self.field, of, self.params.band_quantile))
        out.update(slice_comparison(self.slice_labels, slice_labels(other, self.slice), self.params.radius))
        return out


def _nanmedian(a: np.ndarray) -> float:
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")


def _nanmean(a: np.ndarray) -> float:
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")
