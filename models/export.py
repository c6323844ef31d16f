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

# the reference and the decision rule live in flows (no torch there); re-exported for the training side
from qnnflow.flows.reference import TIE_RTOL, decisions, load_qonnx, run_qonnx
from qnnflow.flows.reference import quiet as _quiet
from torch import nn

__all__ = ["TIE_RTOL", "decisions", "load_qonnx", "run_qonnx", "export_qonnx", "check_export", "ExportCheck"]

# Float32 logits of the same integer accumulators can differ in the last bits between PyTorch and
# onnxruntime (summation order); this bounds that, relative to the largest logit magnitude.
LOGIT_RTOL = 1e-4


def export_qonnx(model: nn.Module, path: Path | str, input_shape: tuple[int, ...]) -> Path:
    """Export ``model`` (eval mode, batch 1) to QONNX at ``path`` and clean it with qonnx."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    # torch's exporter may put the weights in a side file (<name>.data); the cleaned model is saved
    # whole, so the raw export stays in a temporary folder and nothing refers to a side file
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        from brevitas.export import export_qonnx as brevitas_export

        raw = Path(tmp) / path.name
        brevitas_export(model, torch.zeros(1, *input_shape), export_path=str(raw))
        cleaned = cleanup_model(ModelWrapper(str(raw)))
    cleaned.save(str(path))
    (path.parent / f"{path.name}.data").unlink(missing_ok=True)  # left by an older export
    return path


@dataclass(frozen=True)
class ExportCheck:
    """Result of comparing QONNX execution with the PyTorch forward on the same inputs."""

    samples: int
    argmax_mismatches: int
    max_abs_logit_diff: float
    logit_tolerance: float

    @property
    def ok(self) -> bool:
        return self.argmax_mismatches == 0 and self.max_abs_logit_diff <= self.logit_tolerance

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "argmax_mismatches": self.argmax_mismatches,
            "max_abs_logit_diff": self.max_abs_logit_diff,
            "logit_tolerance": self.logit_tolerance,
            "ok": self.ok,
        }


def check_export(model: nn.Module, onnx_path: Path | str, x: np.ndarray) -> ExportCheck:
    """Compare the exported QONNX model with ``model``'s PyTorch forward on every input in ``x``."""
    from qnnflow.models.zoo import logits

    ref = logits(model, x).numpy()
    got = run_qonnx(load_qonnx(onnx_path), x).reshape(ref.shape)
    tol = LOGIT_RTOL * max(1.0, float(np.abs(ref).max()))
    return ExportCheck(
        samples=len(x),
        argmax_mismatches=int((decisions(ref) != decisions(got)).sum()),
        max_abs_logit_diff=float(np.abs(ref - got).max()),
        logit_tolerance=tol,
    )
