"""The quasi network against Monte-Carlo binary networks, the NTK fits, kernel ridge regression."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qnnflow.models.quasi import (
    binary_forward,
    decay_fits,
    kernel_ridge_gap,
    latent_weights,
    quasi_act,
    quasi_forward,
    quasi_linear,
    sample_binary,
)


def test_quasi_linear_moments_are_exact():
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(3, 5, generator=gen, dtype=torch.float64) * 2 - 1
    x = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    mu, s2 = quasi_linear(w, x, torch.zeros_like(x))
    torch.testing.assert_close(mu, x @ w.T / math.sqrt(5))
    torch.testing.assert_close(s2, (x**2) @ (1 - w**2).T / 5)  # the paper's s^2 for a fixed input


@pytest.mark.parametrize("act", ["sign", "relu"])
def test_activation_expectations_match_sampling(act):
    gen = torch.Generator().manual_seed(2)
    mu = torch.tensor([[-1.0, -0.2, 0.0, 0.4, 1.5]], dtype=torch.float64)
    s2 = torch.tensor([[0.3, 1.0, 2.0, 0.5, 0.1]], dtype=torch.float64)
    n = 200_000
    h = mu + torch.sqrt(s2) * torch.randn(n, 5, generator=gen, dtype=torch.float64)
    a = torch.sign(h) if act == "sign" else torch.relu(h)
    mean, var = quasi_act(mu, s2, act)
    se = a.std(0) / math.sqrt(n)
    assert bool(((a.mean(0) - mean[0]).abs() < 5 * se + 1e-4).all())  # + 1e-4: a tail no sample reaches
    torch.testing.assert_close(var[0], a.var(0), rtol=0.02, atol=1e-3)


@pytest.mark.parametrize("act", ["sign", "relu"])
def test_quasi_mean_matches_monte_carlo_within_the_clt_error(act):
    """One hidden layer of width 256 on 64 inputs: the quasi output is E[f] up to the normal approximation of
    each unit's pre-activation; the Monte-Carlo mean of S binary networks differs from E[f] by its standard
    error. Both together stay within 4 standard errors plus a small CLT term (1/sqrt(fan-in) of the spread)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(20, 64, generator=gen, dtype=torch.float64)
    ws = latent_weights([64, 256, 1], gen)
    quasi = quasi_forward(ws, x, act)[:, 0]
    s, chunk = 2000, 250
    outs = []
    for _ in range(s // chunk):  # chunk binary networks at once
        b1 = sample_binary(ws[0].expand(chunk, -1, -1), gen)
        b2 = sample_binary(ws[1].expand(chunk, -1, -1), gen)
        pre = torch.einsum("cjd,nd->cnj", b1, x) / 8
        hid = torch.sign(pre) if act == "sign" else torch.relu(pre)
        outs.append(torch.einsum("cnj,cj->cn", hid, b2[:, 0]) / 16)
    outs = torch.cat(outs)
    # the batched sampling is the library's binary network
    one = binary_forward([b1[0], b2[0]], x, act)[:, 0]
    torch.testing.assert_close(outs[-chunk], one)
    mean, std = outs.mean(0), outs.std(0)
    bound = 4 * std / math.sqrt(s) + std / math.sqrt(64)
    assert bool(((mean - quasi).abs() <= bound).all()), ((mean - quasi).abs() / std).max()
    # and the quasi network is not trivially right: a wrong variance (none) is far off for sign
    if act == "sign":
        mu = x @ ws[0].T / 8
        wrong = torch.sign(mu) @ ws[1].T[:, 0] / 16
        assert float((mean - wrong).abs().mean()) > 5 * float((mean - quasi).abs().mean())


def test_decay_fits_tell_exponential_from_power_law():
    i = np.arange(1, 101, dtype=float)
    assert decay_fits(np.exp(-0.2 * i), 100)["better_fit"] == "exponential"
    f = decay_fits(i**-2.0, 100)
    assert f["better_fit"] == "power_law" and f["power_law"]["exponent"] == pytest.approx(2.0)
    assert decay_fits(np.exp(-0.2 * i), 100)["exponential"]["rate"] == pytest.approx(0.2)


def test_kernel_ridge_on_separable_data():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    y = rng.integers(0, 3, 150)
    x = centers[y] + rng.normal(size=(150, 2))
    for kernel in ("gaussian", "laplace"):
        r = kernel_ridge_gap(x[:100], y[:100], x[100:], y[100:], kernel)
        assert r["test"] > 0.95 and r["train"] >= r["test"] - 0.05
