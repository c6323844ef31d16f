"""PTQ-W: post-training weight quantization by rounding to nearest, per tensor or per output channel.

The quantizer is symmetric, signed and narrow-range (the same integer grid as the zoo's
``Int8WeightPerTensorFloat`` with ``bit_width = b``): with ``Q = 2^(b-1) - 1``,

    s = max|W| / Q          (per tensor: over all of W; per channel: over each output channel,
                             i.e. each slice W[k, ...] along dimension 0)
    W_q = s * clip(round(W / s), -Q, Q)

``round`` is round-half-to-even (``torch.round``). A channel that is all zero keeps ``s = 1`` and
stays zero. Only the weights of ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layers are quantized; biases,
batch-norm parameters and activations stay float (weight-only PTQ).
"""

from __future__ import annotations

import copy
import enum

import torch
from torch import nn

QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
MIN_BITS, MAX_BITS = 2, 16


class Granularity(enum.Enum):
    PER_TENSOR = "per-tensor"
    PER_CHANNEL = "per-channel"


def _check_bits(bits: int) -> None:
    if not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"weight bit width must be an integer in [{MIN_BITS}, {MAX_BITS}], found {bits!r}")


def qmax(bits: int) -> int:
    """The largest integer level of the narrow-range signed grid: ``2^(bits-1) - 1``."""
    _check_bits(bits)
    return 2 ** (bits - 1) - 1


def weight_scale(w: torch.Tensor, bits: int, granularity: Granularity) -> torch.Tensor:
    """The scale ``s``, broadcastable against ``w`` (shape ``()`` or ``(C_out, 1, ...)``)."""
    q = qmax(bits)
    if granularity is Granularity.PER_TENSOR:
        m = w.detach().abs().max()
    else:
        m = w.detach().abs().reshape(w.shape[0], -1).max(dim=1).values
        m = m.reshape(-1, *([1] * (w.ndim - 1)))
    s = m / q
    return torch.where(s > 0, s, torch.ones_like(s))


def quantize_tensor(w: torch.Tensor, bits: int, granularity: Granularity) -> torch.Tensor:
    """Round-to-nearest quantization of one weight tensor (see the module docstring)."""
    q = qmax(bits)
    s = weight_scale(w, bits, granularity)
    return torch.clamp(torch.round(w / s), -q, q) * s


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers whose weights PTQ-W quantizes, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, QUANTIZABLE)]


def quantize_weights(model: nn.Module, bits: int, granularity: Granularity | str) -> nn.Module:
    """A copy of ``model`` with every quantizable weight rounded to nearest on a ``bits``-bit grid."""
    granularity = Granularity(granularity)
    _check_bits(bits)
    layers = quantizable_layers(model)
    if not layers:
        raise ValueError(
            f"PTQ-W found no layer to quantize in {type(model).__name__}: it needs nn.Linear or nn.Conv"
        )
    out = copy.deepcopy(model)
    with torch.no_grad():
        for _, m in quantizable_layers(out):
            m.weight.copy_(quantize_tensor(m.weight, bits, granularity))
    out.eval()
    return out
