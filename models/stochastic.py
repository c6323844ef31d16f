"""Binary weights by stochastic rounding, BinaryConnect-style (Zhang, Yin, Wang, arXiv 2206.05916).

Each binary weight is a random variable over a latent real weight w in [-1, 1]:
P(b = +1) = (1 + w) / 2, so E[b] = w and Var[b] = 1 - w^2. Every training step draws a fresh b for
every weight, runs the forward and backward with b, and applies the gradient (taken at b) to w, which
is then clipped to [-1, 1].

The network is the zoo's Brevitas model of a ``w1`` preset (bipolar weights, any activation); its
weight tensors hold the latent w times the quantizer's constant scale c (Brevitas clamps a binary
weight tensor to [-c, c] in place, so c w is the form it keeps; b is stored as c b). The deployed
network takes the deterministic choice sign(w), the mode of b (the Brevitas binary quantizer applies
exactly that), with BatchNorm statistics recomputed for it: it exports as ordinary bipolar weights.
"""

from __future__ import annotations

import torch
from torch import nn

EXPORT_RULE = "sign(w): the mode of the stochastic binary weight, P(b=+1) = (1+w)/2"


def stochastic_round(w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """+1 with probability (1 + w) / 2, else -1 (w is clipped to [-1, 1] first)."""
    p = (1 + w.clamp(-1.0, 1.0)) / 2
    return torch.where(torch.rand(w.shape, generator=generator, dtype=w.dtype) < p, 1.0, -1.0).to(w.dtype)


def binary_weights(model: nn.Module) -> list[nn.Parameter]:
    """The weight tensors of the model's quantized conv / linear layers."""
    from brevitas.nn import QuantConv2d, QuantLinear

    return [m.weight for m in model.modules() if isinstance(m, QuantConv2d | QuantLinear)]


class StochasticBinaryMethod:
    """Training hooks (see :func:`qnnflow.models.train.train_model`)."""

    name = "stochastic-binary"

    def __init__(self, preset, split, seed: int):
        from qnnflow.models.zoo import build_model

        if preset.weight != "1":
            raise ValueError(
                f"stochastic-binary trains bipolar weights (presets <topology>-w1a<A>, e.g. "
                f"{preset.topology}-w1a{preset.act}), not {preset.name}"
            )
        self.model = build_model(preset, split.input_quant.bits, split.input_quant.scale)
        self.weights = binary_weights(self.model)
        mods = [m for m in self.model.modules() if getattr(m, "weight", None) is not None and m.weight.dim() > 1]
        with torch.no_grad():
            self.scales = [float(m.quant_weight().scale) for m in mods]
            gen = torch.Generator().manual_seed(seed)
            for w, c in zip(self.weights, self.scales, strict=True):  # latent w ~ U(-1, 1): E[b] = w is a real net
                w.copy_(c * (torch.rand(w.shape, generator=gen) * 2 - 1))
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self.latent: list[torch.Tensor] = []
        self.loss_scale = 1.0

    def start_epoch(self, epoch: int) -> dict:
        with torch.no_grad():
            lat = [(w / c).abs().flatten() for w, c in zip(self.weights, self.scales, strict=True)]
            mean_abs = float(torch.cat(lat).mean())
        return {"mean_abs_latent": mean_abs}  # how far the weights are from the coin flip (0) on average

    def before_step(self) -> None:
        self.latent = [w.detach().clone() for w in self.weights]
        with torch.no_grad():
            for w, c in zip(self.weights, self.scales, strict=True):
                w.copy_(c * stochastic_round(w / c, self.gen))

    def before_update(self) -> None:
        with torch.no_grad():  # the gradient was taken at the sample b; it updates the latent w
            for w, lat in zip(self.weights, self.latent, strict=True):
                w.copy_(lat)

    def after_update(self) -> None:
        with torch.no_grad():
            for w, c in zip(self.weights, self.scales, strict=True):
                w.clamp_(-c, c)

    def finish(self, x_train: torch.Tensor) -> tuple[nn.Module, dict]:
        from qnnflow.models.ana import recalibrate_batchnorm

        with torch.no_grad():
            zeros = 0
            for w in self.weights:  # sign(0) would be 0, not a bipolar weight
                zeros += int((w == 0).sum())
                w.copy_(torch.where(w == 0, torch.full_like(w, 1e-6), w))
            lat = torch.cat([(w / c).flatten() for w, c in zip(self.weights, self.scales, strict=True)])
        recalibrate_batchnorm(self.model, x_train)
        info = {
            "method": "stochastic-binary",
            "export_rule": EXPORT_RULE,
            "batchnorm_recalibrated": True,
            "latent_zero_weights_set_to_plus_one": zeros,
            "latent_mean_abs": float(lat.abs().mean()),
            "latent_saturated_fraction": float((lat.abs() >= 1.0).float().mean()),
        }
        return self.model.eval(), info
