"""Total-variation (TV) smoothing of quantized feature maps, for training and export.

:class:`TVSmooth` follows a quantized unsigned activation (Brevitas ``QuantReLU``, 2..4 bits) and
applies ``iters`` TV steps to its feature maps. Its forward pass is exactly
:func:`qnnflow.flows.ir.kernels_tv.tv_step` on the activation's integer codes ``c = y / scale``,
times the scale: the same integer function the exported ``TVSmooth`` op
(:mod:`qnnflow.flows.ir.custom_ops`), the compiler's layer and ``hw/tv_smooth.sv`` compute. Its
backward pass is the gradient of the float TV step (straight-through style: the rounding of the
table, of ``gamma^2`` and of the update is invisible to it):

    S(z) = z - gamma^2 * (D_x^T (D_x z / r) + D_y^T (D_y z / r)),  r = sqrt((D_x z)^2 + (D_y z)^2 + eps)

on ``z = y / scale`` (code units, per channel, Neumann boundaries as in kernels_tv), times the
scale. The activation's scale is treated as a constant by the step (its gradient flows through
the activation as without TV).

Export: each step is one ``TVSmooth`` node in the domain ``qnnflow.flows.ir.custom_ops`` with the
scale, levels and constants as attributes (the symbolic function below); :func:`tv_exporting`
fixes each module's scale to a Python float for the export.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
from qnnflow.flows.ir.graph import TV_DOMAIN
from qnnflow.flows.ir.kernels_tv import TVParams, tv_step
from torch import nn

__all__ = ["TVConfig", "TVSmooth", "float_tv_step", "tv_exporting", "tv_modules"]

TV_BITS = (2, 3, 4)  # activation widths the TV step is defined for (its table has (2^A)^2 words)
MAX_ITERS = 3


@dataclass(frozen=True)
class TVConfig:
    """How many TV steps follow each hidden convolution's activation, and their step size gamma
    (``gamma^2`` rounded to ``gamma_frac_bits`` fraction bits; see :class:`TVParams`)."""

    iters: int = 0
    gamma: float = 0.5

    def __post_init__(self):
        if not 0 <= self.iters <= MAX_ITERS:
            raise ValueError(f"TV iterations must be in 0..{MAX_ITERS}, not {self.iters}")
        if not 0 < self.gamma <= 2:
            raise ValueError(f"TV gamma must be in (0, 2], not {self.gamma}")

    def params(self) -> TVParams:
        p = TVParams.from_gamma(self.gamma)
        if p.gamma_q == 0:
            raise ValueError(f"TV gamma {self.gamma} rounds gamma^2 to 0 at {p.gamma_frac_bits} fraction bits")
        return p

    def as_dict(self) -> dict:
        return {**asdict(self), "gamma_q": self.params().gamma_q, "gamma_frac_bits": self.params().gamma_frac_bits}


def check_tv_activation(bits: int | None, signed: bool, where: str) -> None:
    """ValueError unless a TV step can follow an activation of ``bits`` bits (unsigned 2..4)."""
    if bits is None or signed or bits not in TV_BITS:
        found = "a float activation" if bits is None else f"{'a signed' if signed else 'an unsigned'} {bits}-bit one"
        raise ValueError(
            f"{where}: TV smoothing needs an unsigned 2- to 4-bit activation (a preset ...a2 to ...a4; its "
            f"table has (2^A)^2 words), found {found}"
        )


def float_tv_step(z: torch.Tensor, gamma2: float, eps: float) -> torch.Tensor:
    """The float TV step S(z) on (N, C, H, W) in code units (module docstring), differentiable."""
    dx = nn.functional.pad(z[..., :, 1:] - z[..., :, :-1], (0, 1))  # 0 in the last column (Neumann)
    dy = nn.functional.pad(z[..., 1:, :] - z[..., :-1, :], (0, 0, 0, 1))  # 0 in the last row
    r = torch.sqrt(dx * dx + dy * dy + eps)
    nx, ny = dx / r, dy / r
    # D^T n: n at the previous position (0 before the first) less n here
    div = nn.functional.pad(nx[..., :, :-1], (1, 0)) - nx + nn.functional.pad(ny[..., :-1, :], (0, 0, 1, 0)) - ny
    return z - gamma2 * div


class _TVFunction(torch.autograd.Function):
    """One exact TV step on ``y = scale * codes`` (NCHW); the float step's gradient backwards."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, scale: float, lo: int, hi: int, p: TVParams) -> torch.Tensor:
        ctx.save_for_backward(y)
        ctx.tv = (scale, p)
        codes = torch.clamp(torch.round(y.detach() / scale), lo, hi).to(torch.int64).cpu().numpy()
        out = tv_step(np.moveaxis(codes, 1, -1), lo, hi, p)
        out = torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, -1, 1))).to(device=y.device, dtype=y.dtype)
        return scale * out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        scale, p = ctx.tv
        with torch.enable_grad():
            yy = y.detach().requires_grad_(True)
            z = float_tv_step(yy / scale, p.gamma2, p.eps) * scale
            (gy,) = torch.autograd.grad(z, yy, grad)
        return gy, None, None, None, None

    @staticmethod
    def symbolic(g, y, scale: float, lo: int, hi: int, p: TVParams):
        out = g.op(
            f"{TV_DOMAIN}::TVSmooth", y, scale_f=float(scale), lo_i=int(lo), hi_i=int(hi), gamma_q_i=int(p.gamma_q),
            gamma_frac_bits_i=int(p.gamma_frac_bits), frac_bits_i=int(p.frac_bits), eps_f=float(p.eps),
            data_layout_s="NCHW",
        )  # fmt: skip
        out.setType(y.type())  # the shape and type of its input
        return out


class TVSmooth(nn.Module):
    """``iters`` TV steps after the quantized activation ``act`` (a Brevitas QuantReLU of 2..4 bits)."""

    def __init__(self, act: nn.Module, bits: int, cfg: TVConfig):
        super().__init__()
        check_tv_activation(bits, False, "TVSmooth")
        self._act = [act]  # a reference, not a submodule: the activation is the model's own layer
        self.lo, self.hi = 0, 2**bits - 1
        self.iters = cfg.iters
        self.p = cfg.params()
        self.export_scale: float | None = None
        self._last_scale: float | None = None  # the scale of the last forward with the quantizer on

    def scale(self) -> float | None:
        """The activation's current scale (a constant for the TV step); None while its quantizer is
        switched off (full-precision activations)."""
        if self.export_scale is not None:
            return self.export_scale
        s = self._act[0].act_quant.scale()
        return None if s is None else float(s.detach())

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        s = self.scale()
        if s is None:
            # full-precision activations (the quantizer switched off, as qnnflow analyze pde does for
            # its reference): the float TV step, in the code units of the scale the quantizer last had
            if self._last_scale is None:
                raise RuntimeError("TVSmooth: the activation's quantizer is off and has never run, so no scale")
            for _ in range(self.iters):
                y = float_tv_step(y / self._last_scale, self.p.gamma2, self.p.eps) * self._last_scale
            return y
        self._last_scale = s
        for _ in range(self.iters):
            y = _TVFunction.apply(y, s, self.lo, self.hi, self.p)
        return y

    def extra_repr(self) -> str:
        return f"iters={self.iters}, gamma_q={self.p.gamma_q}/2^{self.p.gamma_frac_bits}, levels {self.lo}..{self.hi}"


def tv_modules(model: nn.Module) -> list[TVSmooth]:
    return [m for m in model.modules() if isinstance(m, TVSmooth)]


@contextlib.contextmanager
def tv_exporting(model: nn.Module):
    """Within: every TVSmooth module of ``model`` uses its activation's scale as a fixed Python
    float (what the exported node's ``scale`` attribute holds)."""
    mods = tv_modules(model)
    with torch.no_grad():
        for m in mods:
            m.export_scale = m.scale()
    try:
        yield model
    finally:
        for m in mods:
            m.export_scale = None
