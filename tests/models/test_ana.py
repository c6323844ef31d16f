"""ANA on constructed cases: forward limits, the backward window, schedules, the CDF mixtures, the Brevitas copy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qnnflow.models.ana import (
    ANASettings,
    Noise,
    NoiseState,
    Schedule,
    ScheduleKind,
    Staircase,
    Strategy,
    ana_quantize,
    build_ana_model,
    to_brevitas,
)
from qnnflow.models.zoo import logits, parse_preset

X = torch.linspace(-2.5, 2.5, 1001, dtype=torch.float64)


def _grad(stair: Staircase, st: NoiseState, x: torch.Tensor = X) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    ana_quantize(x, stair, st).sum().backward()
    return x.grad


def test_ternary_forward_at_half_width_is_hardtanh():
    out = ana_quantize(X, Staircase.ternary(), NoiseState(Noise.UNIFORM, s_forward=0.5))
    torch.testing.assert_close(out, torch.nn.functional.hardtanh(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("noise", list(Noise))
def test_zero_width_forward_is_the_hard_staircase(noise):
    stair = Staircase.ternary()
    want = np.where(X.numpy() > 0.5, 1.0, np.where(X.numpy() > -0.5, 0.0, -1.0))  # H(0) = 0
    got = ana_quantize(X, stair, NoiseState(noise, s_forward=0.0)).numpy()
    np.testing.assert_array_equal(got, want)
    # and evaluation is the hard staircase whatever the width
    np.testing.assert_array_equal(
        ana_quantize(X, stair, NoiseState(noise, s_forward=0.5), training=False).numpy(), want
    )


def test_backward_is_the_clipped_ste_window():
    g = _grad(Staircase.ternary(), NoiseState(Noise.UNIFORM, s_forward=0.0, s_backward=0.5))
    x = X.numpy()
    want = ((np.abs(x + 0.5) <= 0.5).astype(float) + (np.abs(x - 0.5) <= 0.5)) / (2 * 0.5)
    np.testing.assert_array_equal(g.numpy(), want)
    inside = (np.abs(x) < 1) & (np.abs(x) > 1e-9)  # at 0 both windows meet (measure zero)
    assert (g.numpy()[inside] == 1).all() and (g.numpy()[np.abs(x) > 1] == 0).all()  # STE: 1 on (-1, 1), else 0


def test_backward_width_is_independent_of_the_forward():
    g = _grad(Staircase.ternary(), NoiseState(Noise.UNIFORM, s_forward=0.5, s_backward=0.25))
    x = X.numpy()
    want = ((np.abs(x + 0.5) <= 0.25).astype(float) + (np.abs(x - 0.5) <= 0.25)) / 0.5
    np.testing.assert_array_equal(g.numpy(), want)


def _std_cdf(noise: Noise, z: np.ndarray) -> np.ndarray:
    """Each family's CDF at u = z * s, written independently of qnnflow.models.ana."""
    if noise is Noise.UNIFORM:
        return np.clip((z + 1) / 2, 0, 1)
    if noise is Noise.TRIANGULAR:
        z = np.clip(z, -1, 1)
        return np.where(z < 0, 0.5 * (1 + z) ** 2, 1 - 0.5 * (1 - z) ** 2)
    if noise is Noise.NORMAL:
        return np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z])
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("noise", list(Noise))
def test_each_noise_family_forward_is_the_cdf_mixture(noise):
    stair = Staircase.signed(3)  # levels -3..3, thresholds -2.5..2.5, unit jumps
    s, mu = 0.7, 0.1
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    got = ana_quantize(x, stair, NoiseState(noise, s_forward=s, mu_forward=mu)).numpy()
    want = stair.levels[0] + sum(_std_cdf(noise, (x.numpy() - t - mu) / s) for t in stair.thresholds)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # its backward is the density mixture: the numerical derivative of that CDF mixture
    g = _grad(stair, NoiseState(noise, s_forward=s, s_backward=s, mu_backward=mu), x).numpy()
    h = 1e-6
    num = sum(
        (_std_cdf(noise, (x.numpy() + h - t - mu) / s) - _std_cdf(noise, (x.numpy() - h - t - mu) / s)) / (2 * h)
        for t in stair.thresholds
    )
    smooth = np.ones_like(num, dtype=bool)
    if noise in (Noise.UNIFORM, Noise.TRIANGULAR):  # kinks of the density at |u| = s
        for t in stair.thresholds:
            smooth &= np.abs(np.abs(x.numpy() - t - mu) - s) > 1e-3
    np.testing.assert_allclose(g[smooth], num[smooth], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("noise", list(Noise))
def test_sample_strategy_averages_to_the_expectation(noise):
    torch.manual_seed(0)
    stair, st = Staircase.ternary(), NoiseState(noise, Strategy.SAMPLE, s_forward=0.4)
    x = torch.tensor([-0.9, -0.5, -0.2, 0.0, 0.3, 0.6, 1.1], dtype=torch.float64)
    n = 20000
    mean = ana_quantize(x.expand(n, -1).contiguous(), stair, st).mean(0)  # independent noise per element
    want = ana_quantize(x, stair, NoiseState(noise, Strategy.EXPECTATION, s_forward=0.4))
    # each sample is in {-1, 0, 1}: standard deviation <= 1, so 5 / sqrt(n) bounds the error with margin
    assert float((mean - want).abs().max()) < 5 / math.sqrt(n)


def test_mode_strategy_picks_the_most_probable_level():
    stair = Staircase.ternary()
    st = NoiseState(Noise.UNIFORM, Strategy.MODE, s_forward=0.4)
    x = torch.tensor([-1.0, -0.55, -0.45, 0.0, 0.45, 0.55, 1.0])
    # uniform width 0.4: P(level) is largest for the level whose interval holds x
    assert ana_quantize(x, stair, st).tolist() == [-1, -1, 0, 0, 0, 1, 1]


def test_multibit_signed_staircases():
    s4 = Staircase.signed(4)
    assert s4.levels == tuple(float(v) for v in range(-7, 8)) and s4.thresholds[0] == -6.5
    s4u = Staircase.signed(4, balanced=False)
    assert s4u.levels[0] == -8.0 and len(s4u.thresholds) == 15
    assert Staircase.signed(2) == Staircase.ternary()
    x = torch.tensor([-9.0, -3.4, -0.6, 0.4, 2.5, 2.51, 9.0])
    assert s4.hard(x).tolist() == [-7, -3, -1, 0, 2, 3, 7]  # round half down at the threshold (H(0) = 0)
    with pytest.raises(ValueError, match="one level more than thresholds"):
        Staircase((0.0, 1.0), (0.5, 0.7))


@pytest.mark.parametrize(
    ("kind", "alpha", "want"),
    [
        # s0 = 0.5, t_start = 4, t_decay = 8: epochs 0, 4, 6, 8, 12, 20
        (ScheduleKind.LINEAR, 1.0, [0.5, 0.5, 0.375, 0.25, 0.0, 0.0]),
        (ScheduleKind.LIMITED, 2.0, [0.5, 0.5, 0.5 * (6 / 8) ** 2, 0.5 * (4 / 8) ** 2, 0.0, 0.0]),
        (ScheduleKind.UNLIMITED, 1.0, [0.5, 0.5, 0.5 / 3, 0.5 / 5, 0.5 / 9, 0.5 / 17]),
    ],
)
def test_schedule_values(kind, alpha, want):
    sched = Schedule(kind, 0.5, t_start=4, t_decay=8, alpha=alpha)
    assert [sched(t) for t in (0, 4, 6, 8, 12, 20)] == pytest.approx(want, abs=1e-15)


def test_staggered_groups_anneal_input_to_output():
    scheds = ANASettings().schedules(groups=3, epochs=24)  # 3/4 of 24 = 18 epochs shared: 6 each
    assert [(s.t_start, s.t_decay) for s in scheds] == [(0, 6), (6, 6), (12, 6)]
    assert [s(6) for s in scheds] == [0.0, 0.5, 0.5] and [s(18) for s in scheds] == [0.0, 0.0, 0.0]
    together = ANASettings(staggered=False).schedules(groups=3, epochs=24)
    assert {(s.t_start, s.t_decay) for s in together} == {(0, 18)}


def test_weight_init_is_a_threshold_plus_small_uniform():
    torch.manual_seed(0)
    model, states = build_ana_model(parse_preset("digits-cnn-wtat"), ANASettings())
    w = model[4].weight.detach()  # conv 32 -> 64, fan-in 288
    off = (w.abs() - 0.5).abs()
    assert float(off.max()) <= 1 / math.sqrt(288) + 1e-7
    assert 0.4 < float((w > 0).float().mean()) < 0.6  # thresholds -0.5 and +0.5 picked at random
    assert len(states) == 3


def test_brevitas_copy_gives_identical_logits():
    torch.manual_seed(1)
    preset = parse_preset("digits-cnn-wtat")
    model, _ = build_ana_model(preset, ANASettings())
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    model.eval()
    brev = to_brevitas(model, preset, 5, 1 / 16)
    x = torch.randint(0, 17, (300, 1, 8, 8)) / 16
    a, b = logits(model, x), logits(brev, x)
    assert torch.equal(a, b)
    assert torch.equal(a, a.round())  # ternary weights in the last layer, scale 1: integer logits


def test_ana_needs_a_ternary_preset():
    with pytest.raises(
        ValueError, match=r"ternary weights and ternary activations .*digits-cnn-wtat.*not digits-cnn-w2a2"
    ):
        build_ana_model(parse_preset("digits-cnn-w2a2"), ANASettings())
