"""The symmetric diffusive PDE-GCN of Ben-Yair, Ben Shalom, Eliasof, Treister (arXiv 2109.00095), quantized.

Node features are rows: x is (N, C), N nodes and C channels. The graph gradient S (E x N) maps node
values to edge differences, (S x)_e = sqrt(w_e) (x_j - x_i) for the edge e = (i, j); S^T S is the
graph Laplacian D - A. With ``normalized=True`` (the default of the networks here) S is replaced by
S D^-1/2, whose S^T S is the normalized Laplacian I - D^-1/2 A D^-1/2 (eigenvalues in [0, 2]), so
one step size h suits graphs of any degree.

A layer, K a 1 x 1 channel mix (C x C) applied on every edge:

- symmetric:      x_{j+1} = x_j - h S^T K^T sigma(K S x_j)     (one K, used twice)
- non-symmetric:  x_{j+1} = x_j - h S^T K2 sigma(K1 S x_j)     (two independent matrices)

The symmetric layer's Jacobian, I - h (S^T (x) K^T) diag(sigma') (S (x) K), is symmetric, and for
h small enough a contraction, so a perturbation (a quantization error) does not grow from layer to
layer; the non-symmetric one has no such structure. sigma is ReLU.

The network: input quantizer, an opening 1 x 1 embedding K_open (x_0 = K_open f, linear: a ReLU
here would make x_0 non-negative, and a 1-bit signed state quantizer would then map every node to
the same value), the diffusion layers, a closing classifier.

Quantized (``bits`` 1..8; None: float): every weight matrix per tensor (``bits`` 1: bipolar with
scale mean |w|; >= 2: Brevitas' signed narrow-range integers with a max-|w| scale), ReLU outputs
unsigned ``bits`` wide (QuantReLU), and the state x_j signed ``bits`` wide (QuantIdentity; 1 bit:
bipolar) with learned scales, before it enters a layer and before the classifier, so both the skip
path and the edge path see the quantized state:

    xq = Q_s(x_j),  x_{j+1} = xq - h S^T K^T Q_a(ReLU(K S xq))

In the transposed use the quantized K is the same tensor as in the forward use (one parameter).
``quant_act=False`` runs the same quantized weights with every activation quantizer bypassed: the
full-precision-activation twin against which the per-layer error is measured.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

BIT_CHOICES = (1, 2, 3, 4, 5, 6, 7, 8)


def check_bits(bits: object) -> int | None:
    """``bits`` as the networks take it: None (float) or an integer 1..8; anything else is refused."""
    if bits is None or (isinstance(bits, int) and not isinstance(bits, bool) and bits in BIT_CHOICES):
        return bits
    raise ValueError(f"bits must be an integer from 1 to 8 or None (float), not {bits!r}")


class GraphGradient:
    """The graph gradient S of an undirected graph as a sparse operator (gather / scatter-add).

    ``edges`` (E, 2) node pairs (i, j); ``weights`` (E,) positive edge weights (default 1). Rows of
    S: +c_j at j, -c_i at i, with c = sqrt(w_e) (times d^-1/2 of the node when ``normalized``)."""

    def __init__(
        self,
        edges: np.ndarray,
        num_nodes: int,
        weights: np.ndarray | None = None,
        normalized: bool = False,
        dtype: torch.dtype = torch.float32,
    ):
        edges = np.asarray(edges)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ValueError(f"edges must be an (E, 2) array of node pairs, not shape {edges.shape}")
        if len(edges) and (edges.min() < 0 or edges.max() >= num_nodes):
            raise ValueError(f"edges must name nodes 0..{num_nodes - 1}, found {edges.min()}..{edges.max()}")
        w = np.ones(len(edges)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(edges),) or (w <= 0).any():
            raise ValueError(f"weights must be {len(edges)} positive numbers, one per edge")
        self.num_nodes = num_nodes
        self.src = torch.as_tensor(edges[:, 0], dtype=torch.long)
        self.dst = torch.as_tensor(edges[:, 1], dtype=torch.long)
        root_w = np.sqrt(w)
        node_scale = np.ones(num_nodes)
        if normalized:
            degree = np.zeros(num_nodes)
            np.add.at(degree, edges[:, 0], w)
            np.add.at(degree, edges[:, 1], w)
            node_scale = np.where(degree > 0, 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)), 0.0)
        self.coef_src = torch.as_tensor(root_w * node_scale[edges[:, 0]], dtype=dtype)[:, None]
        self.coef_dst = torch.as_tensor(root_w * node_scale[edges[:, 1]], dtype=dtype)[:, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """S x: (N, C) -> (E, C)."""
        return self.coef_dst * x[self.dst] - self.coef_src * x[self.src]

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        """S^T y: (E, C) -> (N, C)."""
        out = torch.zeros((self.num_nodes, y.shape[1]), dtype=y.dtype)
        out.index_add_(0, self.dst, self.coef_dst * y)
        out.index_add_(0, self.src, -self.coef_src * y)
        return out

    def dense(self) -> torch.Tensor:
        """S as a dense (E, N) matrix (for tests and small graphs)."""
        s = torch.zeros((len(self.src), self.num_nodes), dtype=self.coef_src.dtype)
        rows = torch.arange(len(self.src))
        s[rows, self.dst] += self.coef_dst[:, 0]
        s[rows, self.src] -= self.coef_src[:, 0]
        return s


# -- quantizers (Brevitas) -------------------------------------------------------------------------


def _binary_weight_quant():
    from brevitas.core.function_wrapper import TensorClamp
    from brevitas.core.scaling import ScalingImplType
    from brevitas.core.stats import StatsOp
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    class BinaryWeightMeanAbs(SignedBinaryWeightPerTensorConst):
        """Bipolar weights with the scale mean |w| (XNOR-Net), the latent weights left unclipped."""

        scaling_impl_type = ScalingImplType.STATS
        scaling_stats_op = StatsOp.AVE
        tensor_clamp_impl = TensorClamp

    return BinaryWeightMeanAbs


def _binary_act_quant():
    from brevitas.core.scaling import ScalingImplType
    from brevitas.quant import SignedBinaryActPerTensorConst

    class BinaryActLearnedScale(SignedBinaryActPerTensorConst):
        """Bipolar activations +-s with a learned s (init 1)."""

        scaling_impl_type = ScalingImplType.PARAMETER
        scaling_init = 1.0

    return BinaryActLearnedScale


def quant_linear(fin: int, fout: int, bits: int | None) -> nn.Module:
    """A bias-free 1 x 1 channel mix: nn.Linear (float) or a Brevitas QuantLinear with ``bits``-bit weights."""
    if bits is None:
        return nn.Linear(fin, fout, bias=False)
    from brevitas.nn import QuantLinear
    from brevitas.quant import Int8WeightPerTensorFloat

    if bits == 1:
        return QuantLinear(fin, fout, bias=False, weight_quant=_binary_weight_quant())
    return QuantLinear(fin, fout, bias=False, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=bits)


def quant_relu(bits: int | None) -> nn.Module:
    """ReLU, its output unsigned ``bits`` wide with a learned scale (1 bit: {0, s})."""
    if bits is None:
        return nn.ReLU()
    from brevitas.nn import QuantReLU

    return QuantReLU(bit_width=bits, return_quant_tensor=False)


def quant_state(bits: int | None) -> nn.Module:
    """The signed state's quantizer: ``bits``-bit signed integers times a learned scale (1 bit: bipolar)."""
    if bits is None:
        return nn.Identity()
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Int8ActPerTensorFloat

    if bits == 1:
        return QuantIdentity(act_quant=_binary_act_quant(), return_quant_tensor=False)
    return QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, max_val=2.0, return_quant_tensor=False)


def linear_weight(layer: nn.Module) -> torch.Tensor:
    """The weight a linear layer multiplies by: its quantized weight for a QuantLinear."""
    if hasattr(layer, "quant_weight"):
        return layer.quant_weight().value
    return layer.weight


# -- the layers and the network ----------------------------------------------------------------


class DiffusionLayer(nn.Module):
    """One PDE-GCN diffusion step, symmetric (one K) or not (K1, K2); see the module docstring."""

    def __init__(self, channels: int, h: float, symmetric: bool, bits: int | None = None):
        super().__init__()
        self.h = float(h)
        self.symmetric = symmetric
        self.k1 = quant_linear(channels, channels, bits)
        self.k2 = None if symmetric else quant_linear(channels, channels, bits)
        self.state_quant = quant_state(bits)
        self.act = quant_relu(bits)

    def forward(self, x: torch.Tensor, grad: GraphGradient, quant_act: bool = True) -> torch.Tensor:
        xq = self.state_quant(x) if quant_act else x
        z = self.k1(grad(xq))  # rows: (S x) K^T, i.e. K S x per edge
        z = self.act(z) if quant_act else torch.relu(z)
        # K^T z per edge is z K in rows; the same (quantized) K as above
        back = z @ linear_weight(self.k1) if self.symmetric else self.k2(z)
        return xq - self.h * grad.transpose(back)


class PDEGCN(nn.Module):
    """Input quantizer, 1 x 1 embedding, ``layers`` diffusion layers, 1 x 1 classifier."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        width: int = 32,
        layers: int = 8,
        h: float = 0.25,
        symmetric: bool = True,
        bits: int | None = None,
        dropout: float = 0.5,
    ):
        super().__init__()
        bits = check_bits(bits)
        if width < 1 or layers < 1:
            raise ValueError(f"width and layers must be positive, not {width} and {layers}")
        if not 0.0 < h <= 10.0:
            raise ValueError(f"step size h must be in (0, 10], not {h}")
        self.bits, self.symmetric, self.h = bits, symmetric, h
        self.input_quant = _input_quant(bits)
        self.drop = nn.Dropout(dropout)
        self.open = quant_linear(in_features, width, bits)
        self.layers = nn.ModuleList(DiffusionLayer(width, h, symmetric, bits) for _ in range(layers))
        self.close_quant = quant_state(bits)
        self.close = quant_linear(width, num_classes, bits)

    def forward(
        self, features: torch.Tensor, grad: GraphGradient, quant_act: bool = True, states: list | None = None
    ) -> torch.Tensor:
        """Logits (N, classes); ``states`` (a list) receives x_0 .. x_L, each layer's output."""
        x = self.open(self.input_quant(features))  # x_0: linear, signed; the first layer quantizes it
        if states is not None:
            states.append(x)
        for layer in self.layers:
            x = layer(x, grad, quant_act)
            if states is not None:
                states.append(x)
        x = self.close_quant(x) if quant_act else x
        return self.close(self.drop(x))


def _input_quant(bits: int | None) -> nn.Module:
    """Node features in [0, 1] on the grid k/16 (digits' pixels / 16, karate's 0/1 rows of A + I): 5-bit
    unsigned with the constant scale 1/16, exact for both data sets."""
    if bits is None:
        return nn.Identity()
    from brevitas.core.scaling import ScalingImplType
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Uint8ActPerTensorFloat

    return QuantIdentity(
        act_quant=Uint8ActPerTensorFloat,
        bit_width=5,
        scaling_impl_type=ScalingImplType.CONST,
        max_val=31 / 16,
        min_val=0.0,
        return_quant_tensor=False,
    )


def weight_count(model: nn.Module) -> int:
    """Entries of the weight matrices (K_open, every K / K1, K2, the classifier): the parameters the
    symmetric layer halves. Quantizer scales are not counted here."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def parameter_count(model: nn.Module) -> int:
    """Every trainable parameter, quantizer scales included."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
