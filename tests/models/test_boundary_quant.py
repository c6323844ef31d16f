"""PTQ-W against an independent numpy quantizer, the stopping rules, and learned rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qnnflow.models import boundary_metrics as bm
from qnnflow.models import ptq
from qnnflow.models.boundary_rounding import RoundingConfig, learned_rounding
from qnnflow.models.boundary_stopping import SweepPoint, pearson_r, select_by_accuracy, select_by_boundary
from torch import nn


def numpy_rtn(w: np.ndarray, bits: int, per_channel: bool) -> np.ndarray:
    """Symmetric narrow-range round-to-nearest, written independently of the library."""
    q = 2 ** (bits - 1) - 1
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    scale = np.abs(flat).max(axis=1, keepdims=True) / q
    scale[scale == 0] = 1.0
    out = np.clip(np.round(flat / scale), -q, q) * scale  # np.round: half to even, like torch
    return out.reshape(w.shape)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("granularity", ["per-tensor", "per-channel"])
def test_ptq_matches_numpy_quantizer(bits, granularity):
    model = _model()
    with torch.no_grad():
        model[0].weight[2].zero_()  # an all-zero channel must stay zero
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = ptq.quantize_weights(model, bits, granularity)
    for name in ("0.weight", "3.weight"):
        w = before[name].double().numpy()
        expected = numpy_rtn(w, bits, granularity == "per-channel")
        np.testing.assert_allclose(q.state_dict()[name].double().numpy(), expected, rtol=1e-6, atol=1e-7)
        levels = np.unique(q.state_dict()[name].numpy())
        assert len(levels) <= (2**bits - 1) * (w.shape[0] if granularity == "per-channel" else 1)
    for name in ("0.bias", "3.bias"):  # biases stay float
        assert torch.equal(q.state_dict()[name], before[name])
    for k, v in model.state_dict().items():  # the original model is untouched
        assert torch.equal(v, before[k])


def test_ptq_errors_say_what_must_hold():
    with pytest.raises(ValueError, match=r"weight bit width must be an integer in \[2, 16\], found 1"):
        ptq.quantize_weights(_model(), 1, "per-tensor")
    with pytest.raises(ValueError, match="per-row"):
        ptq.quantize_weights(_model(), 4, "per-row")
    with pytest.raises(ValueError, match="found no layer to quantize in ReLU"):
        ptq.quantize_weights(nn.ReLU(), 4, "per-tensor")


def _sweep(jaccard: dict[int, float], flips: dict[int, float], acc: dict[int, float]) -> list[SweepPoint]:
    return [
        SweepPoint(
            b,
            "per-tensor",
            {"slice_jaccard_distance": jaccard[b], "flip_rate": flips[b], "accuracy": acc[b], "accuracy_ref": 0.98},
            {"bits": b},
        )
        for b in sorted(jaccard)
    ]


def test_stopping_walks_down_and_stops_at_the_first_failure():
    jac = {2: 0.99, 3: 0.9, 4: 0.7, 5: 0.45, 6: 0.6, 7: 0.4, 8: 0.2}  # 6 fails, although 5 passes
    flips = {2: 0.5, 3: 0.02, 4: 0.01, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0}
    acc = {2: 0.2, 3: 0.95, 4: 0.975, 5: 0.98, 6: 0.98, 7: 0.98, 8: 0.98}
    sweep = _sweep(jac, flips, acc)
    by_b = select_by_boundary(sweep, jaccard_tol=0.5, flip_tol=0.0)
    assert (by_b.bits, by_b.passed, by_b.point.test) == (7, True, {"bits": 7})
    by_a = select_by_accuracy(sweep, accuracy_tol=0.01)
    assert (by_a.bits, by_a.passed) == (4, True)
    # With a flip tolerance the Jaccard criterion alone decides.
    assert select_by_boundary(sweep, jaccard_tol=0.75, flip_tol=0.02).bits == 4
    # Nothing passes: the widest width, flagged.
    none = select_by_boundary(sweep, jaccard_tol=0.1, flip_tol=0.0)
    assert (none.bits, none.passed) == (8, False)
    with pytest.raises(ValueError, match="non-empty sweep"):
        select_by_boundary([], 0.5, 0.0)


def test_pearson_r():
    assert pearson_r([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(pearson_r([1, 1, 1], [1, 2, 3]))


def _digits_mlp():
    from qnnflow.models.datasets import load_dataset

    d = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    x, y = torch.as_tensor(d.x_train), torch.as_tensor(d.y_train)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), d


def test_learned_rounding_rounds_each_weight_down_or_up_and_beats_rtn_on_calibration():
    torch.set_num_threads(1)
    model, d = _digits_mlp()
    bits = 4
    cfg = RoundingConfig(bits=bits, steps=500, lr=0.1, margin_weight=1.0)
    learned, info = learned_rounding(model, d.x_cal, cfg)
    rtn = ptq.quantize_weights(model, bits, "per-tensor")
    q = 2 ** (bits - 1) - 1
    for (name, w), (_, wl) in zip(model.state_dict().items(), learned.state_dict().items(), strict=True):
        if not name.endswith("weight"):
            assert torch.equal(w, wl)
            continue
        s = w.abs().max() / q
        k = wl / s
        np.testing.assert_allclose(k, torch.round(k), atol=1e-4)  # on the integer grid
        ws = torch.clamp(w / s, -q, q)
        assert ((k >= torch.floor(ws) - 1e-4) & (k <= torch.ceil(ws) + 1e-4)).all()  # floor or ceil
    x = torch.as_tensor(d.x_cal)
    with torch.no_grad():
        z = model(x)
        err_learned = ((learned(x) - z) ** 2).mean()
        err_rtn = ((rtn(x) - z) ** 2).mean()
    assert err_learned < err_rtn
    assert model[1].weight.requires_grad  # the reference model is left as it was


def test_boundary_gap_term_keeps_the_band_points_that_plain_rounding_flips():
    """Two classes, logits W x, W = [[1, 0.4], [0, 0]] at 2 bits (levels -1, 0, +1 at scale 1): the
    weight 0.4 rounds down (boundary x1 = 0) or up (x1 + x2 = 0). Output reconstruction prefers down
    at every point (error (0.4 x2)^2 against (0.6 x2)^2), which flips the band points such as
    (-0.1, 0.5), whose reference margin x1 + 0.4 x2 is small and positive; rounding up keeps them.
    So mu = 0 must round down and flip the whole band, and a large mu must round up and flip none."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.4], [0.0, 0.0]]))
    ref = nn.Sequential(lin).eval()
    band = np.array([[-0.1, 0.5], [0.1, -0.5], [-0.05, 0.3], [0.05, -0.3]] * 3, dtype=np.float32)
    far = np.array([[2.0, 0.1], [-2.0, -0.1], [1.5, -0.2], [-1.5, 0.2]] * 6, dtype=np.float32)
    x = np.concatenate([band, far])
    view = bm.ReferenceView(ref, x, bm.BoundaryParams(grid=10, band_quantile=0.3))
    results = {}
    for mu in (0.0, 100.0):
        cfg = RoundingConfig(bits=2, steps=300, lr=0.1, margin_weight=mu, band_quantile=0.3)
        rounded, info = learned_rounding(ref, x, cfg)
        assert info["band_size"] == len(band)
        results[mu] = (rounded[0].weight.detach().numpy(), view.compare(rounded))
    np.testing.assert_array_equal(results[0.0][0], [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(results[100.0][0], [[1.0, 1.0], [0.0, 0.0]])
    assert results[0.0][1]["band_pair_order_flip_rate"] == 1.0
    assert results[100.0][1]["band_pair_order_flip_rate"] == 0.0
