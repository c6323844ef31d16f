"""Boundary geometry metrics on constructed classifiers whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qnnflow.models import boundary_metrics as bm
from torch import nn


class Affine(nn.Module):
    """Logits ``W x + b`` on flattened inputs (float64, so the closed forms hold to ~1e-12)."""

    def __init__(self, w: np.ndarray, b: np.ndarray):
        super().__init__()
        self.w = torch.as_tensor(w, dtype=torch.float64)
        self.b = torch.as_tensor(b, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1).to(torch.float64) @ self.w.T + self.b


class NearestCentroid(nn.Module):
    """Logits ``-||x - c_k||^2``: the boundaries form the Voronoi diagram of the centroids."""

    def __init__(self, centroids: np.ndarray):
        super().__init__()
        self.c = torch.as_tensor(centroids, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x.reshape(len(x), 1, -1).to(torch.float64) - self.c[None]) ** 2).sum(-1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_margin_radius_of_a_linear_classifier_is_the_exact_distance(rng):
    w, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    x = rng.normal(size=(50, 1, 2, 3))
    radius = bm.margin_radii(Affine(w, b), x)
    z = x.reshape(50, -1) @ w.T + b
    order = np.argsort(-z, axis=1)
    i, j = order[:, 0], order[:, 1]
    expected = (z[np.arange(50), i] - z[np.arange(50), j]) / np.linalg.norm(w[i] - w[j], axis=1)
    np.testing.assert_allclose(radius, expected, rtol=1e-10)
    assert (radius >= 0).all()


def test_shifted_linear_boundary_has_known_displacement_and_zero_angle(rng):
    w, b = rng.normal(size=(2, 5)), np.array([0.3, -0.1])
    delta = 0.25
    ref, moved = Affine(w, b), Affine(w, b + np.array([delta, 0.0]))
    x = rng.normal(size=(40, 5))
    rf = bm.margin_field(ref, x)
    of = bm.margin_field(moved, x, pair=rf.pair)
    np.testing.assert_allclose(bm.boundary_shift(rf, of), delta / np.linalg.norm(w[0] - w[1]), rtol=1e-10)
    np.testing.assert_allclose(bm.normal_angles_deg(rf, of), 0.0, atol=1e-5)


def test_normal_angle_of_a_rotated_boundary(rng):
    # Class-1 weights zero, so the pair normal is w0 (up to sign); rotate it by 30 degrees.
    theta = np.radians(30.0)
    w_ref = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    w_rot = np.array([[np.cos(theta), np.sin(theta), 0.0], [0.0, 0.0, 0.0]])
    x = rng.normal(size=(20, 3))
    rf = bm.margin_field(Affine(w_ref, np.zeros(2)), x)
    of = bm.margin_field(Affine(w_rot, np.zeros(2)), x, pair=rf.pair)
    np.testing.assert_allclose(bm.normal_angles_deg(rf, of), 30.0, atol=1e-4)


def test_fields_on_different_pairs_are_refused(rng):
    x = rng.normal(size=(5, 3))
    a = bm.margin_field(Affine(np.eye(3), np.zeros(3)), x)
    b = bm.margin_field(Affine(-np.eye(3), np.zeros(3)), x)
    with pytest.raises(ValueError, match="same reference pairs"):
        bm.boundary_shift(a, b)


def test_identical_models_give_zero_everything(rng):
    w, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    x = rng.normal(size=(60, 4))
    view = bm.ReferenceView(Affine(w, b), x, bm.BoundaryParams(grid=30))
    r = view.compare(Affine(w.copy(), b.copy()))
    assert r["flips"] == 0 and r["slice_flip_cells"] == 0
    assert r["slice_jaccard_distance"] == 0.0
    assert r["median_boundary_shift"] == 0.0
    assert r["median_normal_angle_deg"] == pytest.approx(0.0, abs=1e-4)
    assert r["band_flip_rate"] == 0.0 and r["band_pair_order_flip_rate"] == 0.0
    assert r["slice_boundary_cells"] == r["slice_boundary_cells_ref"] > 0


def test_median_margin_radius_uses_each_models_own_top_pair(rng):
    """A model that ranks the classes the other way round: on the reference's pair its margins are
    negative, but its margin radius is taken on its own top pair, so it is >= 0 and equals the
    closed form of its own linear boundaries."""
    w, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    x = rng.normal(size=(80, 4))
    view = bm.ReferenceView(Affine(w, b), x, bm.BoundaryParams(grid=20))
    r = view.compare(Affine(-w, -b))
    z = x @ (-w).T - b
    order = np.argsort(-z, axis=1)
    i, j = order[:, 0], order[:, 1]
    own = (z[np.arange(80), i] - z[np.arange(80), j]) / np.linalg.norm(w[i] - w[j], axis=1)
    assert r["median_margin_radius"] == pytest.approx(float(np.median(own)), rel=1e-9)
    assert r["median_margin_radius"] > 0 and r["pair_order_flip_rate"] == 1.0


def test_boundary_mask_of_a_straight_edge():
    labels = np.zeros((6, 8), dtype=int)
    labels[:, 5:] = 1
    mask = bm.boundary_mask(labels, radius=1)
    assert mask[:, [4, 5]].all() and mask.sum() == 12
    wide = bm.boundary_mask(labels, radius=2)
    assert wide[:, 3:7].all() and wide.sum() == 24


def test_t_junction_on_a_grid():
    # Left: 0; right-bottom: 1; right-top: 2. The corner sits between columns 3|4 and rows 2|3.
    labels = np.zeros((7, 9), dtype=int)
    labels[:3, 4:] = 1
    labels[3:, 4:] = 2
    j = bm.junction_mask(labels, radius=1)
    assert sorted(zip(*np.nonzero(j), strict=True)) == [(2, 3), (2, 4), (3, 3), (3, 4)]
    assert bm.count_regions(j) == 1


def test_junction_of_three_centroids_is_found_at_their_circumcentre(rng):
    # 2-D data spread wider along x than y: its principal directions are the axes, so the slice
    # coordinates (u, v) are (x, y). The Voronoi vertex of three centroids is their circumcentre.
    x = np.stack([rng.uniform(-2, 2, 400), rng.uniform(-1, 1, 400)], axis=1)
    x -= x.mean(axis=0)
    centre = np.array([0.3, -0.2])
    angles = np.radians([90.0, 210.0, 330.0])
    centroids = centre + 0.8 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    s = bm.pca_slice(x, grid=121, pad=0.0)
    np.testing.assert_allclose(np.abs(s.basis), np.eye(2), atol=0.05)
    labels = bm.slice_labels(NearestCentroid(centroids), s)
    j = bm.junction_mask(labels, radius=1)
    assert bm.count_regions(j) == 1
    r, c = np.nonzero(j)
    cell = max(s.u[1] - s.u[0], s.v[1] - s.v[0])
    found = np.array([s.u[c].mean(), s.v[r].mean()])
    # The data's mean is not exactly 0 after centring the sample, and the axes are PCA estimates.
    true_uv = s.project(centre[None])[0]
    assert np.linalg.norm(found - true_uv) < 1.5 * cell


def test_jaccard_distance_of_known_masks():
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    a[0, :4] = True
    b[0, 2:] = True
    b[1, :2] = True
    assert bm.jaccard_distance(a, b) == pytest.approx(1 - 2 / 6)
    assert bm.jaccard_distance(a, a) == 0.0
    assert bm.jaccard_distance(np.zeros_like(a), np.zeros_like(a)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        bm.jaccard_distance(a, a[:2])


def test_slice_flips_count_cells_with_different_labels():
    ref = np.zeros((5, 5), dtype=int)
    other = ref.copy()
    other[0, :3] = 2
    r = bm.slice_comparison(ref, other, radius=1)
    assert r["slice_flip_cells"] == 3 and r["slice_flip_rate"] == pytest.approx(3 / 25)
    assert r["slice_boundary_cells_ref"] == 0 and r["slice_jaccard_distance"] == 1.0


def _field(logits: np.ndarray, pair: np.ndarray, margins: np.ndarray) -> bm.MarginField:
    grad = np.zeros((len(margins), 2))
    grad[:, 0] = 1.0  # unit gradient norm: radius == margin
    return bm.MarginField(logits, pair, margins, grad, 1e-12)


def test_band_flip_rates_on_a_constructed_set():
    n = 10
    ref_margin = np.linspace(0.1, 1.0, n)  # radii 0.1 .. 1.0; the 0.3-quantile is 0.37 -> 3 in the band
    ref_logits = np.zeros((n, 3))
    ref_logits[:, 0] = ref_margin  # class 0 first, class 1 runner-up at 0, class 2 at -1
    ref_logits[:, 2] = -1.0
    pair = np.tile([0, 1], (n, 1))
    other = ref_logits.copy()
    other[0] = [0.0, 0.5, -1.0]  # band: label flip to 1, pair order reversed
    other[1] = [0.2, 0.0, 0.9]  # band: label flip to 2, pair order kept
    other[7] = [0.1, 0.4, -1.0]  # outside: label flip to 1, pair order reversed
    om = other[:, 0] - other[:, 1]
    r = bm.band_metrics(_field(ref_logits, pair, ref_margin), _field(other, pair, om), quantile=0.3)
    assert r["band_size"] == 3 and r["outside_size"] == 7
    assert r["band_radius_threshold"] == pytest.approx(0.37)
    assert r["band_flip_rate"] == pytest.approx(2 / 3)
    assert r["band_pair_order_flip_rate"] == pytest.approx(1 / 3)
    assert r["outside_flip_rate"] == pytest.approx(1 / 7)
    assert r["outside_pair_order_flip_rate"] == pytest.approx(1 / 7)
    with pytest.raises(ValueError, match=r"band quantile must be in \(0, 1\], found 0"):
        bm.band_metrics(_field(ref_logits, pair, ref_margin), _field(other, pair, om), quantile=0)


def test_slice_points_lie_on_the_plane_and_keep_the_input_shape(rng):
    x = rng.normal(size=(30, 1, 2, 3)).astype(np.float32)
    s = bm.pca_slice(x, grid=5)
    pts = s.points()
    assert pts.shape == (25, 1, 2, 3)
    np.testing.assert_allclose(s.basis @ s.basis.T, np.eye(2), atol=1e-10)
    uv = s.project(pts)
    np.testing.assert_allclose(uv[:5, 0], s.u, atol=1e-5)  # first row: v = v_min, u runs along
    np.testing.assert_allclose(uv[::5, 1], s.v, atol=1e-5)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="grid must be at least 3, found 2"):
        bm.BoundaryParams(grid=2)
    with pytest.raises(ValueError, match="radius must be at least 1, found 0"):
        bm.BoundaryParams(radius=0)
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        bm.predict_logits(lambda t: t.sum(dim=1), np.zeros((3, 4)))
