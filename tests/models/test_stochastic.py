"""Stochastic-rounding binary weights: the rounding's statistics and the training hooks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qnnflow.models.stochastic import StochasticBinaryMethod, stochastic_round


def test_stochastic_rounding_is_unbiased():
    w = torch.tensor([-1.0, -0.9, -0.5, -0.1, 0.0, 0.2, 0.5, 0.75, 1.0], dtype=torch.float64)
    n = 40000
    gen = torch.Generator().manual_seed(0)
    b = stochastic_round(w.expand(n, -1).contiguous(), gen)
    assert set(torch.unique(b).tolist()) <= {-1.0, 1.0}
    mean = b.mean(0)
    # Var[b] = 1 - w^2 <= 1; a deviation beyond 5 standard errors has probability < 1e-6 per weight
    bound = 5 * torch.sqrt((1 - w**2).clamp(min=1e-12) / n)
    assert bool(((mean - w).abs() <= bound + 1e-12).all()), (mean - w, bound)
    assert mean[0] == -1 and mean[-1] == 1  # the ends are deterministic
    np.testing.assert_allclose(b.var(0).numpy(), (1 - w**2).numpy(), atol=0.02)


def test_stochastic_rounding_clips_the_latent_weight():
    gen = torch.Generator().manual_seed(1)
    b = stochastic_round(torch.tensor([-3.0, 5.0]).expand(1000, -1).contiguous(), gen)
    assert (b[:, 0] == -1).all() and (b[:, 1] == 1).all()


def test_hooks_sample_then_update_the_latent_weights():
    from qnnflow.models.datasets import load_dataset
    from qnnflow.models.zoo import parse_preset

    split = load_dataset("digits")
    hooks = StochasticBinaryMethod(parse_preset("digits-cnn-w1a1"), split, seed=0)
    w = hooks.weights[1]
    c = hooks.scales[1]
    latent = w.detach().clone()
    assert float((latent / c).abs().max()) <= 1 and c > 0
    hooks.before_step()
    assert set(torch.unique(w.detach() / c).round().tolist()) == {-1.0, 1.0}  # a sample: +-c exactly
    # the sample is +1 about (1 + w) / 2 of the time over the tensor's 18,432 weights
    frac = float((w.detach() > 0).float().mean())
    want = float(((1 + latent / c) / 2).mean())
    assert abs(frac - want) < 5 * math.sqrt(0.25 / w.numel())
    hooks.before_update()
    assert torch.equal(w.detach(), latent)  # the optimizer steps the latent weight
    with torch.no_grad():
        w.add_(10 * c)
    hooks.after_update()
    assert float(w.detach().max()) == pytest.approx(c)  # clipped to [-c, c]


def test_stochastic_binary_needs_bipolar_weights():
    from qnnflow.models.datasets import load_dataset
    from qnnflow.models.zoo import parse_preset

    with pytest.raises(ValueError, match=r"bipolar weights .*digits-cnn-w1a2.*not digits-cnn-w2a2"):
        StochasticBinaryMethod(parse_preset("digits-cnn-w2a2"), load_dataset("digits"), seed=0)
