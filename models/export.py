"""QONNX export of Brevitas models, batched QONNX execution, and the export-vs-PyTorch check.

The check is rung 1 -> 2 of the verification ladder (DESIGN.md): the cleaned QONNX graph, run by
``qonnx.core.onnx_exec.execute_onnx``, must give the same argmax as the PyTorch forward on every
test input, and logits within a stated tolerance.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Float32 logits of the same integer accumulators can differ in the last bits between PyTorch and
# onnxruntime (summation order); this bounds that, relative to the largest logit magnitude.
LOGIT_RTOL = 1e-4
# Logits that are the same integer accumulator times one scale tie often at low bit widths (a
# bipolar last layer ties on most inputs). Values this close, relative to the largest magnitude,
# are taken as equal, and the decision goes to the lowest class index, as LabelSelect does in
# hardware. Distinct 16-bit accumulators differ by at least 2**-16 (1.5e-5) of the largest.
TIE_RTOL = 4e-6


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's progress prints and warnings (they are not the user's concern)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


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


def load_qonnx(path: Path | str):
    """Load a QONNX / FINN-ONNX file as a cleaned ModelWrapper; ValueError if it is not one."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError / various protobuf errors
        raise ValueError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from None
    if len(proto.graph.node) == 0:
        raise ValueError(f"{path}: ONNX graph has no nodes")
    with _quiet():
        return cleanup_model(ModelWrapper(proto))


def run_qonnx(model, x: np.ndarray, batch_size: int = 100, progress: bool = False) -> np.ndarray:
    """Execute a QONNX model on ``x`` (N, ...) with qonnx's reference executor, in batches.

    The model's batch dimension is changed to ``batch_size`` (qonnx ``ChangeBatchSize``) so each
    ``execute_onnx`` call runs a whole batch; the last batch is padded with its first sample.
    """
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    n = len(x)
    batch_size = max(1, min(batch_size, n))
    batched = model.transform(ChangeBatchSize(batch_size)).transform(InferShapes())
    in_name = batched.graph.input[0].name
    out_name = batched.graph.output[0].name
    outs = []
    for start in range(0, n, batch_size):
        chunk = np.asarray(x[start : start + batch_size], dtype=np.float32)
        real = len(chunk)
        if real < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - real, axis=0)])
        with _quiet():
            out = execute_onnx(batched, {in_name: chunk})[out_name]
        outs.append(np.asarray(out)[:real])
        if progress:
            print(f"  qonnx execution: {min(start + batch_size, n)}/{n}", end="\r", flush=True)
    if progress:
        print()
    return np.concatenate(outs)


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


def decisions(outputs: np.ndarray, tie_rtol: float = TIE_RTOL) -> np.ndarray:
    """Class decisions from a model's outputs, ties (within ``tie_rtol``) to the lowest index.

    When the graph already ends in a top-1 selection (one value per sample, as FINN-ONNX graphs
    with TopK do) that value is the decision.
    """
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return flat[:, 0].astype(np.int64)
    top = flat.max(axis=1, keepdims=True)
    tol = tie_rtol * np.maximum(np.abs(flat).max(axis=1, keepdims=True), 1e-30)
    return np.argmax(flat >= top - tol, axis=1)


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
