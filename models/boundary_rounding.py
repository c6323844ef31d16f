"""Fixed-bit rounding with a boundary-gap term: AdaRound-style learned rounding plus a margin penalty.

At a fixed bit width and the round-to-nearest scales of :mod:`qnnflow.models.ptq`, each weight
chooses to round down or up. The choice is relaxed (Nagel et al., "Up or Down? Adaptive Rounding
for Post-Training Quantization", 2020): with ``Q = 2^(b-1) - 1``,

    W_q(V) = s * clip(floor(W / s) + h(V), -Q, Q),   h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)

with zeta = 1.1, gamma = -0.1, and ``V`` initialized so that ``h(V) = frac(W / s)``. The loss, on the
calibration set ``X`` (all points each step), is

    L = mean_x ||f_q(x) - f_ref(x)||^2 / C                                   (output reconstruction)
      + lambda * sum_layers mean_w (1 - |2 h(V) - 1|^beta)                   (drives h to 0 or 1)
      + mu * mean_{x in band} relu(m_ref(x) - m_q(x))^2                      (boundary-gap term)

``f`` are logits (``C`` classes); ``m(x) = f_i(x) - f_j(x)`` for the reference's top pair at ``x``;
the band is the calibration points whose reference margin radius (see
:mod:`qnnflow.models.boundary_metrics`) is at most the ``band_quantile``-quantile. The gap term
charges only *lost* margin of those points, squared like the reconstruction term. ``lambda`` is 0
during the first ``warmup`` fraction of steps, then ``beta`` anneals linearly from ``beta_start`` to
``beta_end``. After the last step each weight is rounded hard: up where ``h(V) >= 0.5``.

Unlike AdaRound's layer-by-layer reconstruction, all layers are optimized jointly against the
network's logits (the margin term needs the logits anyway). ``mu = 0`` is plain (joint) AdaRound.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from qnnflow.models.boundary_metrics import margin_field
from qnnflow.models.ptq import Granularity, qmax, quantizable_layers, weight_scale
from torch import nn
from torch.func import functional_call

ZETA, GAMMA = 1.1, -0.1


@dataclass(frozen=True)
class RoundingConfig:
    bits: int = 4
    granularity: str = Granularity.PER_TENSOR.value
    steps: int = 2000
    lr: float = 5e-2
    reg_weight: float = 1.0  # lambda (tuned so that every h(V) ends at 0 or 1 on digits)
    beta_start: float = 20.0
    beta_end: float = 2.0
    warmup: float = 0.2
    margin_weight: float = 0.0  # mu; 0 = plain AdaRound
    band_quantile: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        Granularity(self.granularity)
        qmax(self.bits)
        if self.steps < 1:
            raise ValueError(f"rounding needs at least 1 optimization step, found {self.steps}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), found {self.warmup}")
        if self.margin_weight < 0 or self.reg_weight < 0:
            raise ValueError(
                f"margin_weight and reg_weight must be >= 0, found {self.margin_weight} and {self.reg_weight}"
            )
        if not 0.0 < self.band_quantile <= 1.0:
            raise ValueError(f"band_quantile must be in (0, 1], found {self.band_quantile}")

    def to_dict(self) -> dict:
        return asdict(self)


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _init_v(frac: torch.Tensor) -> torch.Tensor:
    """V with ``h(V) = frac`` (frac in [0, 1)), clipped away from the sigmoid's flat tails."""
    p = ((frac - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)
    return torch.log(p / (1 - p))


class _LearnedRounding:
    """The per-layer state: frozen float weights, scales and floors, and the learnable ``V``."""

    def __init__(self, model: nn.Module, bits: int, granularity: Granularity):
        self.q = qmax(bits)
        self.names, self.scale, self.floor, self.v = [], [], [], []
        for name, m in quantizable_layers(model):
            w = m.weight.detach()
            s = weight_scale(w, bits, granularity)
            # Values that would clip stay clipped: their floor is taken after clipping W / s.
            ws = torch.clamp(w / s, -self.q, self.q)
            fl = torch.floor(ws)
            self.names.append(f"{name}.weight" if name else "weight")
            self.scale.append(s)
            self.floor.append(fl)
            self.v.append(_init_v(ws - fl).requires_grad_(True))

    def weights(self, hard: bool = False) -> dict[str, torch.Tensor]:
        out = {}
        for name, s, fl, v in zip(self.names, self.scale, self.floor, self.v, strict=True):
            h = (rectified_sigmoid(v) >= 0.5).to(fl.dtype) if hard else rectified_sigmoid(v)
            out[name] = torch.clamp(fl + h, -self.q, self.q) * s
        return out

    def regularizer(self, beta: float) -> torch.Tensor:
        terms = [(1 - (2 * rectified_sigmoid(v) - 1).abs().pow(beta)).mean() for v in self.v]
        return torch.stack(terms).sum()


def learned_rounding(
    model: nn.Module,
    x_cal: np.ndarray,
    cfg: RoundingConfig,
    progress: Callable[[str], None] | None = None,
) -> tuple[nn.Module, dict]:
    """A copy of ``model`` with learned-rounding weights, and a log of the optimization.

    ``model`` (the float reference) is not changed. ``progress`` gets a line every tenth of the run.
    """
    torch.manual_seed(cfg.seed)
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    x = torch.as_tensor(x_cal, dtype=torch.float32)
    target = _target(ref, x_cal, cfg.band_quantile)
    state = _LearnedRounding(ref, cfg.bits, Granularity(cfg.granularity))
    opt = torch.optim.Adam(state.v, lr=cfg.lr)
    log: list[dict] = []
    for step in range(cfg.steps):
        loss, terms = _loss(ref, state, x, target, cfg, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps - 1:
            rec = {"step": step, "loss": loss.item(), **terms}
            log.append(rec)
            if progress is not None:
                progress(
                    f"rounding {cfg.bits}-bit mu={cfg.margin_weight:g}: step {step + 1}/{cfg.steps} "
                    f"recon {rec['recon']:.4g} gap {rec['gap']:.4g} reg {rec['reg']:.4g}"
                )
    return _hard_rounded(model, state), {
        "config": cfg.to_dict(),
        "log": log,
        "band_size": int(target.band.sum()),
        "undecided_fraction_per_layer": _undecided_fraction(state),
    }


@dataclass(frozen=True)
class _Target:
    """What the rounding is fitted to on the calibration set: the reference's logits, its top pair
    at each point, its margin on that pair, and the band (points near a boundary)."""

    logits: torch.Tensor
    pair: torch.Tensor
    margin: torch.Tensor
    band: torch.Tensor


def _pair_margin(z: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """``z_i - z_j`` for each row's pair ``(i, j)``."""
    return (z.gather(1, pair[:, :1]) - z.gather(1, pair[:, 1:])).squeeze(1)


def _target(ref: nn.Module, x_cal: np.ndarray, band_quantile: float) -> _Target:
    field = margin_field(ref, x_cal)
    z_ref = torch.as_tensor(field.logits, dtype=torch.float32)
    pair = torch.as_tensor(field.pair, dtype=torch.long)
    radius = field.signed_distance
    band = torch.as_tensor(radius <= np.quantile(radius, band_quantile))
    return _Target(z_ref, pair, _pair_margin(z_ref, pair), band)


def _loss(
    ref: nn.Module, state: _LearnedRounding, x: torch.Tensor, target: _Target, cfg: RoundingConfig, step: int
) -> tuple[torch.Tensor, dict]:
    """The loss of one optimization step (module docstring), and its terms as numbers for the log."""
    z = functional_call(ref, state.weights(), (x,))
    recon = ((z - target.logits) ** 2).sum(dim=1).mean() / z.shape[1]
    m_q = _pair_margin(z, target.pair)
    gap = (torch.relu(target.margin - m_q)[target.band] ** 2).mean() if target.band.any() else z.new_zeros(())
    warm = int(cfg.warmup * cfg.steps)
    if step < warm:
        beta, reg = cfg.beta_start, z.new_zeros(())
    else:
        t = (step - warm) / max(1, cfg.steps - warm - 1)
        beta = cfg.beta_start + t * (cfg.beta_end - cfg.beta_start)
        reg = state.regularizer(beta)
    loss = recon + cfg.reg_weight * reg + cfg.margin_weight * gap
    return loss, {"recon": recon.item(), "gap": gap.item(), "reg": reg.item(), "beta": float(beta)}


def _hard_rounded(model: nn.Module, state: _LearnedRounding) -> nn.Module:
    """A copy of ``model`` with each weight rounded hard (up where ``h(V) >= 0.5``)."""
    out = copy.deepcopy(model).eval()
    with torch.no_grad():
        hard = state.weights(hard=True)
        modules = dict(out.named_modules())
        for name, w in hard.items():
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            modules[owner].weight.copy_(w)
    return out


def _undecided_fraction(state: _LearnedRounding) -> list[float]:
    """Per layer, the fraction of weights whose ``h(V)`` is still between 0.01 and 0.99."""
    return [float(((rectified_sigmoid(v) > 0.01) & (rectified_sigmoid(v) < 0.99)).float().mean()) for v in state.v]
