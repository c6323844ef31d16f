"""The model zoo: FINN's TFC / SFC / LFC MLPs and CNV, and a small CNN for the 8x8 digits.

Preset names are ``<topology>-w<W>a<A>`` (and ``<topology>-float`` for the float baseline):

- ``W`` weights: ``1`` bipolar {-1, +1}; ``t`` ternary {-1, 0, +1} (Brevitas' ternary quantizer,
  threshold at half the scale); ``2`` .. ``8`` signed narrow-range integers (so ``w2`` also has the
  levels {-1, 0, +1}, with a learned scale). Per-tensor scales.
- ``A`` activations: ``1`` bipolar sign; ``t`` ternary {-1, 0, +1} (2-bit signed narrow range, constant
  scale 1: thresholds at -0.5 and +0.5, the staircase of additive noise annealing, :mod:`qnnflow.models.ana`);
  ``2`` .. ``8`` unsigned (quantized ReLU) with a learned scale.

Every quantized model starts with its input quantizer (the data set's :class:`InputQuant`), and
ends with a bias-free linear layer whose logits are the integer accumulator times one positive
scale, so the class decision is an integer argmax. Convolutions and linear layers have no bias;
batch normalization sits between them and the activation (FINN's streamlining folds it into
thresholds).

Topologies (input shape, layers):

- ``digits-cnn`` (1, 8, 8): conv3x3 32 - BN - act, conv3x3 64 - BN - act, maxpool 2, FC 256 -> 10.
- ``tfc`` / ``sfc`` / ``lfc`` (1, 28, 28): 3 x (FC - BN - act) with 64 / 256 / 1024 units, FC -> 10.
- ``cnv`` (3, 32, 32): conv 64, 64, pool, 128, 128, pool, 256, 256 (3x3, no padding), FC 512, 512, 10.
- ``digits-symcnn`` / ``digits-rescnn`` (1, 8, 8) and ``mnist-symcnn`` / ``mnist-rescnn`` (1, 28, 28):
  residual CNNs of stable symmetric blocks (one weight tensor for the convolution and the transposed
  convolution, h = 1/8) or standard blocks (two, h = 1), same depth and width: stem conv 8, 2 blocks,
  avgpool, conv 16, 2 blocks, avgpool, FC -> 10 (:mod:`qnnflow.models.symmetric`; activations a2..a8).

With TV smoothing (``build_model(..., tv=TVConfig(iters, gamma))``, ``--tv-iters``), each hidden
convolution's activation of the CNNs is followed by that many TV steps (:mod:`qnnflow.models.tv`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from qnnflow.models.symmetric import RESIDUAL_TOPOLOGIES, residual_layers
from torch import nn

if TYPE_CHECKING:
    from qnnflow.models.tv import TVConfig

TOPOLOGIES = {
    # name: (data set, input shape, default epochs, learning rate)
    "digits-cnn": ("digits", (1, 8, 8), 60, 1e-2),
    "tfc": ("mnist-5k", (1, 28, 28), 30, 1e-2),
    "sfc": ("mnist-5k", (1, 28, 28), 30, 1e-2),
    "lfc": ("mnist-5k", (1, 28, 28), 30, 1e-2),
    "cnv": ("cifar10", (3, 32, 32), 30, 1e-2),
    # residual CNNs (qnnflow.models.symmetric): the paper's stable symmetric blocks and the standard baseline
    "digits-symcnn": ("digits", (1, 8, 8), 40, 1e-2),
    "digits-rescnn": ("digits", (1, 8, 8), 40, 1e-2),
    "mnist-symcnn": ("mnist-5k", (1, 28, 28), 15, 1e-2),
    "mnist-rescnn": ("mnist-5k", (1, 28, 28), 15, 1e-2),
}
_MLP_WIDTH = {"tfc": 64, "sfc": 256, "lfc": 1024}
WEIGHT_CHOICES = ("1", "t", "2", "3", "4", "5", "6", "7", "8")
ACT_CHOICES = ("1", "t", "2", "3", "4", "5", "6", "7", "8")
_PRESET_RE = re.compile(r"^(?P<topo>[a-z-]+?)-(?:w(?P<w>[1-8t])a(?P<a>[1-8t])|(?P<float>float))$")


@dataclass(frozen=True)
class Preset:
    """A parsed preset name. ``weight`` and ``act`` are "1", "t" or "2".."8"; None for float."""

    name: str
    topology: str
    weight: str | None
    act: str | None

    @property
    def act_bits(self) -> int | None:
        """Activation bit width (a ternary activation takes 2 bits, signed narrow range)."""
        return None if self.act is None else 2 if self.act == "t" else int(self.act)

    @property
    def is_float(self) -> bool:
        return self.weight is None

    @property
    def dataset(self) -> str:
        return TOPOLOGIES[self.topology][0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return TOPOLOGIES[self.topology][1]

    @property
    def epochs(self) -> int:
        return TOPOLOGIES[self.topology][2]

    @property
    def lr(self) -> float:
        return TOPOLOGIES[self.topology][3]

    def float_twin(self) -> Preset:
        return parse_preset(f"{self.topology}-float")


# topologies whose layers take per-layer widths (LayerBits): their weight layers and activations in order
LAYER_COUNTS = {"digits-cnn": (3, 2), "tfc": (4, 3), "sfc": (4, 3), "lfc": (4, 3), "cnv": (9, 8)}


@dataclass(frozen=True)
class LayerBits:
    """Per-layer widths: ``weights[k]`` of the k-th conv / linear layer (signed narrow-range integers),
    ``acts[k]`` of the activation after it (unsigned), in the order the topology makes them."""

    weights: tuple[int, ...]
    acts: tuple[int, ...]

    @classmethod
    def parse(cls, name: str) -> LayerBits:
        """``"w4.3.2a4.3"`` (as :attr:`name` writes it) -> LayerBits((4, 3, 2), (4, 3))."""
        m = re.fullmatch(r"w(\d(?:\.\d)*)a(\d(?:\.\d)*)", name or "")
        if m is None:
            raise ValueError(f"per-layer widths are written w<W1>.<W2>...a<A1>.<A2>... (e.g. w4.3.2a4.3), not {name!r}")
        return cls(tuple(int(b) for b in m[1].split(".")), tuple(int(b) for b in m[2].split(".")))

    @classmethod
    def uniform(cls, topology: str, w: int, a: int) -> LayerBits:
        nw, na = LAYER_COUNTS[topology]
        return cls((w,) * nw, (a,) * na)

    @property
    def name(self) -> str:
        w, a = set(self.weights), set(self.acts)
        if len(w) == 1 and len(a) == 1:
            return f"w{self.weights[0]}a{self.acts[0]}"
        return "w" + ".".join(map(str, self.weights)) + "a" + ".".join(map(str, self.acts))

    def check(self, p: Preset, tv: TVConfig | None) -> None:
        if p.topology not in LAYER_COUNTS:
            raise ValueError(
                f"per-layer widths need one of the topologies {', '.join(LAYER_COUNTS)}, not {p.topology}"
            )
        if p.is_float or p.weight in ("1", "t") or p.act in ("1", "t") or tv is not None:
            raise ValueError(
                f"per-layer widths go with a preset of integer weights and unsigned activations and no TV "
                f"steps, not {p.name}" + (" with TV" if tv is not None else "")
            )
        nw, na = LAYER_COUNTS[p.topology]
        if len(self.weights) != nw or len(self.acts) != na:
            raise ValueError(
                f"{p.topology} has {nw} weight layers and {na} activations; per-layer widths {self.name} give "
                f"{len(self.weights)} and {len(self.acts)}"
            )
        bad = [b for b in (*self.weights, *self.acts) if not (isinstance(b, int) and 2 <= b <= 8)]
        if bad:
            raise ValueError(f"per-layer widths must be integers of 2..8 bits, found {bad} in {self.name}")


def list_presets() -> list[str]:
    """Representative preset names (any W and A in 1, t, 2..8 is accepted)."""
    names = []
    for topo in TOPOLOGIES:
        names.append(f"{topo}-float")
        pairs = (("1", 1), ("1", 2), ("t", 2), ("t", "t"), ("2", 2), ("4", 4), ("8", 8))
        names += [f"{topo}-w{w}a{a}" for w, a in pairs if topo not in RESIDUAL_TOPOLOGIES or a not in (1, "t")]
    return names


def parse_preset(name: str) -> Preset:
    match = _PRESET_RE.match(name)
    if match is None or match.group("topo") not in TOPOLOGIES:
        raise ValueError(
            f"unknown preset {name!r}: expected <topology>-w<W>a<A> or <topology>-float with topology in "
            f"{', '.join(TOPOLOGIES)}, W in 1, t, 2..8 and A in 1, t, 2..8 (e.g. digits-cnn-w2a2, tfc-w1a1)"
        )
    if match.group("float"):
        return Preset(name, match.group("topo"), None, None)
    if match.group("topo") in RESIDUAL_TOPOLOGIES and match.group("a") in ("1", "t"):
        raise ValueError(
            f"preset {name}: the residual stream of {match.group('topo')} needs unsigned activations of 2..8 bits "
            f"(a2 .. a8), not a{match.group('a')} (a residual add of bipolar or ternary streams is not lowered)"
        )
    return Preset(name, match.group("topo"), match.group("w"), match.group("a"))


# -- layer factories -----------------------------------------------------------------------------
def weight_kwargs(weight: str, unit_scale: bool = False) -> dict:
    from brevitas.quant import (
        Int8WeightPerTensorFloat,
        SignedBinaryWeightPerTensorConst,
        SignedTernaryWeightPerTensorConst,
    )

    if weight == "1":
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    if weight == "t":
        # Brevitas' constant ternary scale is 0.1 (threshold 0.05); unit_scale: levels {-1, 0, +1} at
        # thresholds -0.5 and +0.5, the staircase that ANA training learns (qnnflow.models.ana)
        unit = {"weight_scaling_const": 1.0} if unit_scale else {}
        return {"weight_quant": SignedTernaryWeightPerTensorConst, **unit}
    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": int(weight)}


class _Builder:
    """Makes the layers of one preset: float torch layers, or Brevitas quantized ones."""

    def __init__(
        self,
        preset: Preset,
        input_bits: int,
        input_scale: float,
        unit_scale: bool = False,
        layer_bits: LayerBits | None = None,
    ):
        self.p = preset
        self.input_bits = input_bits
        self.input_scale = input_scale
        self.unit_scale = unit_scale
        # per-layer widths: the k-th conv / linear layer made takes weights[k], the k-th activation acts[k]
        self.layer_bits = layer_bits
        self._next_w = 0
        self._next_a = 0

    def _weight(self) -> str:
        if self.layer_bits is None:
            return self.p.weight
        k, self._next_w = self._next_w, self._next_w + 1
        return str(self.layer_bits.weights[k])

    def _act_bits(self) -> int:
        if self.layer_bits is None:
            return self.p.act_bits
        k, self._next_a = self._next_a, self._next_a + 1
        return self.layer_bits.acts[k]

    def input_quant(self) -> nn.Module:
        if self.p.is_float:
            return nn.Identity()
        from brevitas.core.scaling import ScalingImplType
        from brevitas.nn import QuantIdentity
        from brevitas.quant import Uint8ActPerTensorFloat

        # Constant scale: max value = (2^bits - 1) * scale, so int = x / scale exactly.
        return QuantIdentity(
            act_quant=Uint8ActPerTensorFloat,
            bit_width=self.input_bits,
            scaling_impl_type=ScalingImplType.CONST,
            max_val=(2**self.input_bits - 1) * self.input_scale,
            min_val=0.0,
        )

    def conv(self, cin: int, cout: int) -> nn.Module:
        if self.p.is_float:
            return nn.Conv2d(cin, cout, 3, bias=False)
        from brevitas.nn import QuantConv2d

        return QuantConv2d(cin, cout, 3, bias=False, **weight_kwargs(self._weight(), self.unit_scale))

    def linear(self, fin: int, fout: int) -> nn.Module:
        if self.p.is_float:
            return nn.Linear(fin, fout, bias=False)
        from brevitas.nn import QuantLinear

        return QuantLinear(fin, fout, bias=False, **weight_kwargs(self._weight(), self.unit_scale))

    def act(self) -> nn.Module:
        if self.p.is_float:
            return nn.ReLU()
        if self.p.act == "1":
            from brevitas.nn import QuantIdentity
            from brevitas.quant import SignedBinaryActPerTensorConst

            return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        if self.p.act == "t":
            from brevitas.nn import QuantIdentity
            from brevitas.quant import SignedTernaryActPerTensorConst

            return QuantIdentity(act_quant=SignedTernaryActPerTensorConst)  # round(x) clamped to [-1, 1]
        from brevitas.nn import QuantReLU

        return QuantReLU(bit_width=self._act_bits())


def build_model(
    preset: str | Preset,
    input_bits: int | None = None,
    input_scale: float | None = None,
    unit_scale: bool = False,
    tv: TVConfig | None = None,
    layer_bits: LayerBits | None = None,
) -> nn.Module:
    """A fresh (untrained) model for ``preset``. Input quantization defaults to the preset's data set.

    ``unit_scale``: ternary weights with scale 1 (thresholds +-0.5) instead of Brevitas' 0.1, the
    form an ANA-trained network is deployed in. ``tv`` with ``iters`` > 0: that many TV smoothing
    steps (:mod:`qnnflow.models.tv`) after each hidden convolution's activation (CNN presets with
    2- to 4-bit activations only). ``layer_bits``: per-layer widths instead of the preset's W and A
    (:class:`LayerBits`; integer weights and unsigned activations of 2..8 bits, non-residual
    topologies, no TV), as boundary-aware calibration makes them (:mod:`qnnflow.models.calibrate`)."""
    p = parse_preset(preset) if isinstance(preset, str) else preset
    if layer_bits is not None:
        layer_bits.check(p, tv)
    tv = tv if tv is not None and tv.iters > 0 else None
    if tv is not None:
        from qnnflow.models.tv import check_tv_activation

        if p.topology not in ("digits-cnn", "cnv", *RESIDUAL_TOPOLOGIES):
            cnns = ", ".join(("digits-cnn", "cnv", *RESIDUAL_TOPOLOGIES))
            raise ValueError(f"TV smoothing acts on feature maps: it needs a CNN preset ({cnns}), not {p.topology}")
        check_tv_activation(p.act_bits if p.act not in ("1", "t") else 1, p.act in ("1", "t"), p.name)
    if input_bits is None or input_scale is None:
        from qnnflow.models.datasets import InputQuant

        defaults = {"digits": InputQuant(5, 1 / 16)}.get(p.dataset, InputQuant(8, 1 / 255))
        input_bits = input_bits or defaults.bits
        input_scale = input_scale or defaults.scale
    b = _Builder(p, input_bits, input_scale, unit_scale, layer_bits)
    layers: list[nn.Module] = [b.input_quant()]

    def conv_act() -> list[nn.Module]:  # a hidden convolution's activation, and its TV steps
        act = b.act()
        if tv is None:
            return [act]
        from qnnflow.models.tv import TVSmooth

        return [act, TVSmooth(act, p.act_bits, tv)]

    if p.topology == "digits-cnn":
        layers += [b.conv(1, 32), nn.BatchNorm2d(32), *conv_act()]
        layers += [b.conv(32, 64), nn.BatchNorm2d(64), *conv_act(), nn.MaxPool2d(2)]
        layers += [nn.Flatten(), b.linear(64 * 2 * 2, 10)]
    elif p.topology in _MLP_WIDTH:
        width = _MLP_WIDTH[p.topology]
        layers.append(nn.Flatten())
        fin = 28 * 28
        for _ in range(3):
            layers += [b.linear(fin, width), nn.BatchNorm1d(width), b.act()]
            fin = width
        layers.append(b.linear(fin, 10))
    elif p.topology in RESIDUAL_TOPOLOGIES:
        layers = residual_layers(p, layers[0], b.linear, tv)
    elif p.topology == "cnv":
        cin = 3
        for i, cout in enumerate((64, 64, 128, 128, 256, 256)):
            layers += [b.conv(cin, cout), nn.BatchNorm2d(cout), *conv_act()]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))
            cin = cout
        layers.append(nn.Flatten())
        fin = 256
        for width in (512, 512):
            layers += [b.linear(fin, width), nn.BatchNorm1d(width), b.act()]
            fin = width
        layers.append(b.linear(fin, 10))
    model = nn.Sequential(*layers)
    model.preset = p.name  # type: ignore[attr-defined]
    if layer_bits is not None and (b._next_w, b._next_a) != (len(layer_bits.weights), len(layer_bits.acts)):
        raise ValueError(
            f"{p.topology} has {b._next_w} weight layers and {b._next_a} activations; the per-layer widths "
            f"{layer_bits.name} give {len(layer_bits.weights)} and {len(layer_bits.acts)}"
        )
    return model


def random_model(preset: str | Preset, seed: int = 0, tv: TVConfig | None = None) -> nn.Module:
    """``preset`` with seeded random weights and random BatchNorm statistics (negative scales and
    large offsets included): a model the compiler must lower exactly without training it (with
    ``tv``: its TV smoothing steps)."""
    torch.manual_seed(seed)
    model = build_model(preset, tv=tv)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.data, mod.bias.data = torch.randn(c), torch.randn(c)
            mod.running_mean.data, mod.running_var.data = torch.randn(c) * 3, torch.rand(c) * 5 + 0.5
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def logits(model: nn.Module, x, batch_size: int = 512) -> torch.Tensor:
    """The model's logits for a float array / tensor ``x`` (eval mode, in batches)."""
    model.eval()
    x = torch.as_tensor(x, dtype=torch.float32)
    outs = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(outs).float()
