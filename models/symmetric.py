"""Stable symmetric residual CNNs (Ben-Yair, Ben Shalom, Eliasof, Treister, arXiv 2109.00095) and
their standard residual baseline, built so that every residual add is exact in integers.

The symmetric (forward-stable) block, with ONE weight tensor ``K`` (C x C x 3 x 3) used by the
convolution and by the transposed convolution (``nn.ConvTranspose2d`` sharing the same Parameter
and the same weight quantizer, so ``Q_w(K)`` is one tensor)::

    a      = Q_a(ReLU(BN1(conv2d(x, Q_w(K)))))                 # x: the quantized residual stream
    r      = Q_b(-(conv_transpose2d(a, Q_w(K)) + b2))          # the branch, negated, quantized
    x_next = Q_x(ReLU(x + h * r))          = Q_x(ReLU(x - h (K^T a + b2)))   up to Q_b's rounding

so before the final ReLU the block is ``x -> x - h K^T Omega K x - h b2`` (Omega = diag(ReLU' *
BN1 slope)), whose Jacobian ``I - h K^T Omega K`` is symmetric. The authors' code has a BN2 after the
transposed convolution; a per-channel scale D2 there would make the Jacobian ``I - h D2 K^T Omega K``,
which is not symmetric, so this block keeps only BN2's shift (the per-channel bias ``b2``).

The standard block (the baseline, same depth and width) has two weight tensors and h = 1::

    r      = Q_b(BN2(conv2d(Q_a(ReLU(BN1(conv2d(x, Q_w(K1))))), Q_w(K2))))
    x_next = Q_x(ReLU(x + r))

Exact integers. The residual stream quantizer ``Q_x`` (unsigned, A bits) and the branch quantizer
``Q_b`` (signed, B = min(A + 2, 8) bits) have constant power-of-two scales, ``s_x = 2^(2 - A)``
(range 0 .. ~4) and ``s_b = 2^(5 - B)`` (range -16 .. ~16), and ``h = 1/8`` is a power of two too,
so ``x / (h r)`` scales are in the ratio ``s_x / (h s_b) = 2^(B - A)`` (standard block: h = 1,
ratio 2^(B - A - 3), i.e. the branch's scale is twice the stream's): an integer, every float32 product
exact, and the compiler's residual add (``flows/passes/streamline_residual.py``) turns the block into
``DuplicateStreams`` -> ... -> ``AddStreams`` of ``k * q_x + q_r`` with no rounding anywhere.
(The paper uses h = 0.1, which is not exact on a binary grid; its subtraction becomes an addition of
the negated branch because the hardware adds two streams.)

Network (digits: 1 x 8 x 8; mnist: 1 x 28 x 28, an average pool after the stem first)::

    input quant, conv3x3 1 -> C (pad 1), BN, Q_x,
    [block C] x N, avgpool 2, Q_x, conv3x3 C -> 2C (pad 1), BN, Q_x,   # channel growth by a conv:
    [block 2C] x N, avgpool 2, Q_x, flatten, linear -> 10               # the compiler has no Concat

The paper grows the channels by concatenating copies of the input; the compiler lowers no
``Concat`` of activations, so a 3 x 3 convolution grows them here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

H_SYMMETRIC = 1.0 / 8.0  # power of two: exact on the integer grid (the paper: 0.1)
H_STANDARD = 1.0
STREAM_RANGE_LOG2 = 2  # residual stream range 0 .. 2^2 (s_x = 2^(2 - A))
BRANCH_RANGE_LOG2 = 4  # branch range -2^4 .. 2^4 (s_b = 2^(5 - B))
MAX_ACT_BITS = 8  # the compiler's widest requantization


@dataclass(frozen=True)
class ResidualTopology:
    """Widths and depth of a residual topology: ``blocks`` per stage, stage widths C and 2C."""

    width: int
    blocks: int
    stem_pool: bool  # average-pool after the stem (28 x 28 inputs)
    symmetric: bool


RESIDUAL_TOPOLOGIES = {
    "digits-symcnn": ResidualTopology(width=8, blocks=2, stem_pool=False, symmetric=True),
    "digits-rescnn": ResidualTopology(width=8, blocks=2, stem_pool=False, symmetric=False),
    "mnist-symcnn": ResidualTopology(width=8, blocks=2, stem_pool=True, symmetric=True),
    "mnist-rescnn": ResidualTopology(width=8, blocks=2, stem_pool=True, symmetric=False),
}


def branch_bits(act_bits: int) -> int:
    """Bits of the signed branch quantizer Q_b for A-bit activations."""
    return min(act_bits + 2, MAX_ACT_BITS)


def stream_scale(act_bits: int) -> float:
    return 2.0 ** (STREAM_RANGE_LOG2 - act_bits)


def branch_scale(act_bits: int) -> float:
    return 2.0 ** (BRANCH_RANGE_LOG2 + 1 - branch_bits(act_bits))


class _Layers:
    """The quantized (Brevitas) or float layers of one preset."""

    def __init__(self, preset, tv=None):
        self.p = preset
        self.tv = tv  # a models.tv.TVConfig: TV steps after each block's inner activation, or None
        if not preset.is_float and preset.act in ("1", "t"):
            raise ValueError(
                f"{preset.name}: the residual stream of {preset.topology} needs unsigned activations of 2..8 bits "
                f"(a2 .. a8), not a{preset.act} (a residual add of bipolar / ternary streams is not lowered)"
            )

    def conv(self, cin: int, cout: int) -> nn.Module:
        if self.p.is_float:
            return nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        from brevitas.nn import QuantConv2d
        from qnnflow.models.zoo import weight_kwargs

        return QuantConv2d(cin, cout, 3, padding=1, bias=False, **weight_kwargs(self.p.weight))

    def conv_transpose(self, conv: nn.Module) -> nn.Module:
        """The transposed convolution of ``conv``: the same Parameter K, the same weight quantizer."""
        c_out, c_in = conv.weight.shape[:2]
        if self.p.is_float:
            t = nn.ConvTranspose2d(c_out, c_in, 3, padding=1, bias=False)
        else:
            from brevitas.nn import QuantConvTranspose2d

            t = QuantConvTranspose2d(c_out, c_in, 3, padding=1, bias=False, weight_quant=conv.weight_quant)
        del t.weight
        t.weight = conv.weight  # conv2d's (C_out, C_in, k, k) is conv_transpose2d's (C_in', C_out', k, k)
        return t

    def act(self) -> nn.Module:
        """Q_a: the inner activation (a learned scale, as the zoo's other presets)."""
        if self.p.is_float:
            return nn.ReLU()
        from brevitas.nn import QuantReLU

        return QuantReLU(bit_width=self.p.act_bits)

    def tv_after(self, act: nn.Module) -> nn.Module:
        """The TV smoothing steps after the inner activation ``act`` (models.tv), or nothing."""
        if self.tv is None:
            return nn.Identity()
        from qnnflow.models.tv import TVSmooth

        return TVSmooth(act, self.p.act_bits, self.tv)

    def stream_quant(self) -> nn.Module:
        """Q_x(ReLU(.)): the residual stream, unsigned A bits, constant scale 2^(2 - A)."""
        if self.p.is_float:
            return nn.ReLU()
        return _const_quant(self.p.act_bits, stream_scale(self.p.act_bits), signed=False, relu=True)

    def branch_quant(self) -> nn.Module:
        """Q_b: the branch, signed B bits, constant scale 2^(5 - B)."""
        if self.p.is_float:
            return nn.Identity()
        bits = branch_bits(self.p.act_bits)
        return _const_quant(bits, branch_scale(self.p.act_bits), signed=True, relu=False)


def _const_quant(bits: int, scale: float, signed: bool, relu: bool) -> nn.Module:
    """A Brevitas activation quantizer with a constant scale: levels are integers times ``scale``."""
    from brevitas.core.scaling import ScalingImplType
    from brevitas.nn import QuantIdentity, QuantReLU
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    top = (2 ** (bits - 1) if signed else 2**bits) - 1
    kwargs = {"bit_width": bits, "scaling_impl_type": ScalingImplType.CONST, "max_val": top * scale}
    if signed:
        return QuantIdentity(act_quant=Int8ActPerTensorFloat, min_val=-(top + 1) * scale, **kwargs)
    cls = QuantReLU if relu else QuantIdentity
    return cls(act_quant=Uint8ActPerTensorFloat, min_val=0.0, **kwargs)


class SymmetricBlock(nn.Module):
    """x_next = Q_x(ReLU(x - h (K^T Q_a(ReLU(BN1(K x))) + b2))), one weight tensor K."""

    def __init__(self, channels: int, layers: _Layers, h: float = H_SYMMETRIC):
        super().__init__()
        self.h = h
        self.conv = layers.conv(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = layers.act()
        self.tv = layers.tv_after(self.act)
        self.conv_t = layers.conv_transpose(self.conv)
        self.bias2 = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.branch_q = layers.branch_quant()
        self.out_q = layers.stream_quant()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """Q_b(-(K^T a + b2)): the negated branch (the hardware adds two streams)."""
        a = self.tv(self.act(self.bn1(self.conv(x))))
        return self.branch_q(self.conv_t(a) * -1.0 - self.bias2)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """x - h (K^T a + b2), before the stream's ReLU and quantizer."""
        return x + self.h * self.branch(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_q(self.pre_activation(x))


class StandardBlock(nn.Module):
    """x_next = Q_x(ReLU(x + Q_b(BN2(K2 Q_a(ReLU(BN1(K1 x))))))), two weight tensors, h = 1."""

    def __init__(self, channels: int, layers: _Layers, h: float = H_STANDARD):
        super().__init__()
        self.h = h
        self.conv1 = layers.conv(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = layers.act()
        self.tv = layers.tv_after(self.act)
        self.conv2 = layers.conv(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.branch_q = layers.branch_quant()
        self.out_q = layers.stream_quant()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch_q(self.bn2(self.conv2(self.tv(self.act(self.bn1(self.conv1(x)))))))

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.h * self.branch(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_q(self.pre_activation(x))


def residual_layers(preset, input_quant: nn.Module, linear, tv=None) -> list[nn.Module]:
    """The layers of a residual topology for ``preset`` (a :class:`qnnflow.models.zoo.Preset`), after
    the data set's ``input_quant``; ``linear(fin, fout)`` makes the classifier (the zoo's factory).
    ``tv`` (a :class:`qnnflow.models.tv.TVConfig`): TV steps after each block's inner activation."""
    topo = RESIDUAL_TOPOLOGIES[preset.topology]
    lay = _Layers(preset, tv)
    block = SymmetricBlock if topo.symmetric else StandardBlock
    c = topo.width
    side = preset.input_shape[-1]
    layers: list[nn.Module] = [input_quant, lay.conv(preset.input_shape[0], c), nn.BatchNorm2d(c), lay.stream_quant()]
    if topo.stem_pool:
        layers += [nn.AvgPool2d(2), lay.stream_quant()]
        side //= 2
    layers += [block(c, lay) for _ in range(topo.blocks)]
    layers += [nn.AvgPool2d(2), lay.stream_quant(), lay.conv(c, 2 * c), nn.BatchNorm2d(2 * c), lay.stream_quant()]
    side //= 2
    layers += [block(2 * c, lay) for _ in range(topo.blocks)]
    layers += [nn.AvgPool2d(2), lay.stream_quant(), nn.Flatten(), linear(2 * c * (side // 2) ** 2, 10)]
    return layers


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """The residual blocks of a model, in order."""
    return [m for m in model.modules() if isinstance(m, SymmetricBlock | StandardBlock)]


def unique_parameter_count(module: nn.Module) -> int:
    """Weights of the convolutions (and transposed ones) in ``module``, each Parameter counted once
    however many layers use it."""
    seen: dict[int, int] = {}
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and isinstance(m.weight, nn.Parameter):
            seen[id(m.weight)] = m.weight.numel()
    return sum(seen.values())
