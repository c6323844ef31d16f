"""Verification built into the flow: each step's graph against QONNX execution of the original.

Rules: the class decisions must be identical on every input. A decision is the project's one
definition, :func:`qnnflow.models.export.decisions`: the index a label-selecting graph outputs, or
the argmax of the logits with ties (within a relative tolerance) to the lowest index, as LabelSelect
does in hardware. The reference runs in float32, so integer accumulators that are equal can come out
as logits a few ulps apart; the tie rule decides those as the hardware does, and such inputs are
counted (``reference_float_ties``: inputs where a plain argmax of the reference would differ).
Outputs that are integers in both graphs (indices, integer logits) must be equal element for
element. A failure raises :class:`VerificationError`, naming the step, the first
differing tensor (found by re-running both graphs on the first failing input and comparing the
tensors they share by name) and its first differing element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qnnflow.flows.execute import Executor, run_batched
from qnnflow.models.export import decisions
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import FlowError


class VerificationError(FlowError):
    """A step's graph computes something other than the reference."""


def _is_int(a: np.ndarray) -> bool:
    return a.dtype.kind in "iu" or bool(np.all(np.asarray(a) == np.round(a)))


@dataclass
class StepCheck:
    step: str
    samples: int
    decision_mismatches: int
    exact: bool  # integer outputs compared element for element
    float_ties: int = 0  # inputs decided by the tie rule where a plain argmax of the reference differs

    def as_dict(self) -> dict:
        return {
            "step": self.step,
            "samples": self.samples,
            "decision_mismatches": self.decision_mismatches,
            "integer_exact": self.exact,
            "reference_float_ties": self.float_ties,
        }


def _first_diff(a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, ...], float, float]:
    idx = tuple(int(i) for i in np.argwhere(a != b)[0])
    return idx, float(a[idx]), float(b[idx])


def check_step(
    step: str, model: ModelWrapper, x: np.ndarray, ref: np.ndarray, prev: ModelWrapper | None,
    prev_out: np.ndarray | None, batch: int = 500,
) -> tuple[StepCheck, np.ndarray]:  # fmt: skip
    out = run_batched(model, x, batch)
    got, want = decisions(out), decisions(ref)
    bad = np.flatnonzero(got != want)
    ties = int((decisions(ref, tie_rtol=0.0) != want).sum())
    exact = False
    if (
        not len(bad)
        and prev_out is not None
        and out.shape == prev_out.shape
        and _is_int(out)
        and _is_int(prev_out)
    ):
        exact = True
        diff = np.flatnonzero((out != prev_out).reshape(len(out), -1).any(1))
        if len(diff):
            bad = diff
    if len(bad):
        raise VerificationError(_explain(step, model, x, ref, out, prev, int(bad[0]), len(bad)))
    if not exact and out.shape == ref.shape and _is_int(out) and _is_int(ref):
        exact = bool(np.array_equal(out, ref))
    elif out.shape == ref.shape:  # float logits: equal up to float32 summation order in the reference
        tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
        diff = np.abs(out.astype(np.float64) - ref)
        if diff.max() > tol:
            i = int(np.argmax(diff.reshape(len(out), -1).max(1)))
            raise VerificationError(
                f"step {step}: output logits differ from the reference by up to {diff.max():.3g} (tolerance "
                f"{tol:.3g}); first at input {i}: {out[i].ravel()[:10]} vs {ref[i].ravel()[:10]}"
            )
    return StepCheck(step, len(x), 0, exact, ties), out


def _explain(step, model, x, ref, out, prev, i, n_bad) -> str:
    msg = (
        f"step {step}: {n_bad} of {len(x)} inputs differ from the reference; first at input {i}: "
        f"decision {decisions(out[i : i + 1])[0]}, reference {decisions(ref[i : i + 1])[0]}"
    )
    if prev is None:
        return msg
    now = Executor(model).run(x[i : i + 1], keep=True)
    before = Executor(prev).run(x[i : i + 1], keep=True)
    from qnnflow.flows.graph import topo_nodes

    for node in topo_nodes(model):
        for t in node.output:
            if t in before and t in now and np.shape(before[t]) == np.shape(now[t]):
                a, b = np.asarray(now[t]), np.asarray(before[t])
                if not np.array_equal(a, b):
                    idx, va, vb = _first_diff(a, b)
                    return (
                        f"{msg}. First differing tensor: {t} (produced by {node.name} ({node.op_type})) at "
                        f"element {idx}: {va:.9g} now, {vb:.9g} before this step"
                    )
    return msg + ". No tensor shared with the previous step differs (the difference is in renamed tensors)"
