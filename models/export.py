"""QONNX export of Brevitas models, batched QONNX execution, and the export-vs-PyTorch check.

The check is rung 1 -> 2 of the verification ladder (DESIGN.md): the cleaned QONNX graph, run by
``qonnx.core.onnx_exec.execute_onnx``, must give the same argmax as the PyTorch forward on every
test input, and logits within a stated tolerance.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# the reference and the decision rule live in flows (no torch there)
from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
from qnnflow.flows.ir.reference import quiet as _quiet
from torch import nn

__all__ = ["export_qonnx", "check_export", "ExportCheck"]

# Float32 logits of the same integer accumulators can differ in the last bits between PyTorch and
# onnxruntime (summation order); this bounds that, relative to the largest logit magnitude.
LOGIT_RTOL = 1e-4


def export_qonnx(model: nn.Module, path: Path | str, input_shape: tuple[int, ...], torchscript: bool = False) -> Path:
    """Export ``model`` (eval mode, batch 1) to QONNX at ``path`` and clean it with qonnx.

    ``torchscript``: torch's TorchScript exporter instead of ``torch.export`` (over ten times faster
    for the small models here; boundary-aware calibration prices its candidates with it)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    # torch's exporter may put the weights in a side file (<name>.data); the cleaned model is saved
    # whole, so the raw export stays in a temporary folder and nothing refers to a side file
    from qnnflow.models.tv import tv_exporting, tv_modules

    # TV smoothing steps export as TVSmooth nodes of qnnflow's domain with their scale fixed
    with tempfile.TemporaryDirectory() as tmp, _quiet(), tv_exporting(model):
        from brevitas.export import export_qonnx as brevitas_export

        raw = Path(tmp) / path.name
        # a model with TV steps goes through the TorchScript exporter, which writes an autograd
        # Function's symbolic (the TVSmooth node); torch.export (the default) has no such hook
        extra = {"dynamo": False} if tv_modules(model) or torchscript else {}
        brevitas_export(model, torch.zeros(1, *input_shape), export_path=str(raw), **extra)
        cleaned = cleanup_model(ModelWrapper(str(raw)))
    cleaned.save(str(path))
    (path.parent / f"{path.name}.data").unlink(missing_ok=True)  # left by an older export
    return path


@dataclass(frozen=True)
class ExportCheck:
    """Result of comparing QONNX execution with the PyTorch forward on the same inputs.

    Both sides are first run in float32. Where they differ by more than the tolerance (or in a
    decision), both are run again in float64: an activation whose exact value lies within float32
    noise of a rounding boundary is rounded one way by PyTorch's summation order and the other way by
    onnxruntime's, a step that propagates into the logits (an 8-bit digits CNN has a few such inputs
    in 360). The export is faithful when the float64 runs agree; ``float32_noise_inputs`` counts the
    inputs only float32 told apart.

    Float64 cannot settle an activation that lies within the noise of the export's own float32
    constants (a folded BatchNorm or scale, each rounded by up to 2**-24) of a rounding boundary:
    the float64 PyTorch model and the float64 QONNX model then compute slightly different values
    and round them apart (the 8-bit digits CNN trained on one machine: one image in 360, 2.4e-6 of a
    step from 85.5). Such inputs, found by :func:`~qnnflow.flows.ir.reference.near_rounding_boundary`
    in QONNX's own float64 run, are counted in ``constant_noise_inputs`` (with their largest logit
    difference) and left out of the verdict: the compiler and the hardware follow the QONNX model,
    whose constants decide them. Every other input must agree."""

    samples: int
    argmax_mismatches: int
    max_abs_logit_diff: float
    logit_tolerance: float
    precision: str = "float32"  # the precision the verdict was reached in
    float32_noise_inputs: int = 0
    float32_max_abs_logit_diff: float | None = None
    # inputs where float64 still differs, each with an activation of the QONNX model within its
    # float32 constants' noise of a rounding boundary (not counted above; see check_export)
    constant_noise_inputs: int = 0
    constant_noise_max_abs_logit_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return self.argmax_mismatches == 0 and self.max_abs_logit_diff <= self.logit_tolerance

    def as_dict(self) -> dict:
        d = {
            "samples": self.samples,
            "argmax_mismatches": self.argmax_mismatches,
            "max_abs_logit_diff": self.max_abs_logit_diff,
            "logit_tolerance": self.logit_tolerance,
            "precision": self.precision,
            "ok": self.ok,
        }
        if self.precision == "float64":
            d.update(
                float32_noise_inputs=self.float32_noise_inputs,
                float32_max_abs_logit_diff=self.float32_max_abs_logit_diff,
                constant_noise_inputs=self.constant_noise_inputs,
                constant_noise_max_abs_logit_diff=self.constant_noise_max_abs_logit_diff,
            )
        return d


def check_export(model: nn.Module, onnx_path: Path | str, x: np.ndarray) -> ExportCheck:
    """Compare the exported QONNX model with ``model``'s PyTorch forward on every input in ``x``
    (float32, and float64 where float32 cannot tell; see :class:`ExportCheck`)."""
    import copy

    from qnnflow.flows.ir.reference import near_rounding_boundary, run_qonnx_double
    from qnnflow.models.zoo import logits

    qonnx_model = load_qonnx(onnx_path)
    ref = logits(model, x).numpy()
    got = run_qonnx(qonnx_model, x).reshape(ref.shape)
    tol = LOGIT_RTOL * max(1.0, float(np.abs(ref).max()))
    diff = np.abs(ref - got).reshape(len(ref), -1).max(1)
    off = (diff > tol) | (decisions(ref) != decisions(got))
    if not off.any():
        return ExportCheck(len(x), 0, float(diff.max(initial=0.0)), tol)
    twin = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        ref64 = torch.cat([twin(torch.as_tensor(x[i : i + 512], dtype=torch.float64)) for i in range(0, len(x), 512)])
    ref64 = ref64.numpy()
    got64 = run_qonnx_double(qonnx_model, x).reshape(ref64.shape)
    diff64 = np.abs(ref64 - got64).reshape(len(ref64), -1).max(1)
    off64 = (diff64 > tol) | (decisions(ref64) != decisions(got64))
    # what float64 cannot settle either: an activation within the export's float32 constant noise
    # of a rounding boundary (found in QONNX's own float64 run), which the QONNX model rounds by its
    # constants; the compiler and the hardware follow the QONNX model, so such inputs are recorded
    boundary = np.zeros(len(x), dtype=bool)
    if off64.any():
        idx = np.flatnonzero(off64)
        boundary[idx] = near_rounding_boundary(qonnx_model, x[idx])
    rest = ~boundary
    return ExportCheck(
        samples=len(x),
        argmax_mismatches=int((decisions(ref64) != decisions(got64))[rest].sum()),
        max_abs_logit_diff=float(diff64[rest].max(initial=0.0)),
        logit_tolerance=tol,
        precision="float64",
        float32_noise_inputs=int((off & ~off64).sum()),
        float32_max_abs_logit_diff=float(diff.max()),
        constant_noise_inputs=int(boundary.sum()),
        constant_noise_max_abs_logit_diff=float(diff64[boundary].max(initial=0.0)),
    )
