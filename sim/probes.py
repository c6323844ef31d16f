"""Probes on the software decision boundary, for the hardware-vs-software boundary check.

Test images lie mostly far from the decision boundary, where a small arithmetic error in the
hardware would not change a class. The inputs that expose one sit on the boundary: there the top
two logits are equal or one input step apart, so threshold rounding and tie-breaking decide.

:func:`boundary_probes` finds such inputs for the quantized software model (QONNX execution of
the export, the reference of the verification ladder): for random pairs of test images that the
model classifies differently it bisects the straight segment between them, keeping one end with
the first image's class and the other with a different one. After ``steps`` halvings the two ends
are a ``2**-steps`` fraction of the segment apart; the model's input quantizer maps them to input
codes one step apart in a few pixels, and the model's class changes between the two. Both ends
are probes, so every pair gives two inputs on either side of the boundary.

``qnnflow sim --boundary-probes N`` (and the build's sim stage) runs the probes through the
stitched accelerator; every hardware decision must equal the software decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qnnflow.flows.ir.reference import decisions, run_qonnx

DEFAULT_STEPS = 14  # segment resolution 2**-14: far finer than any input quantizer of the zoo


@dataclass
class Probes:
    inputs: np.ndarray  # (2 * pairs, ...) float model inputs: the class-a ends, then the class-b ends
    decisions: np.ndarray  # software (QONNX) class of each probe
    pairs: np.ndarray  # (pairs, 2) indices of the test images the segments join
    margins: np.ndarray  # top-1 minus runner-up output of each probe (0: a tie)
    test_margins: np.ndarray  # the same for the test images, for comparison
    steps: int

    def summary(self) -> dict:
        a, b = np.split(self.decisions, 2)
        return {
            "probes": len(self.inputs),
            "pairs": len(self.pairs),
            "bisection_steps": self.steps,
            "pairs_straddling": int((a != b).sum()),
            "ties": int((self.margins == 0).sum()),
            "median_margin": float(np.median(self.margins)),
            "median_test_margin": float(np.median(self.test_margins)),
        }


def _margins(outputs: np.ndarray) -> np.ndarray:
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if flat.shape[1] < 2:  # the graph ends in a class index: no margin to report
        return np.full(len(flat), np.nan)
    top2 = np.sort(flat, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


class NoBoundaryError(ValueError):
    """The inputs give the bisection nothing to work on: fewer than two classes among them."""


def boundary_probes(model, x: np.ndarray, pairs: int, *, steps: int = DEFAULT_STEPS, seed: int = 0) -> Probes:
    """``2 * pairs`` inputs on either side of ``model``'s decision boundary, between images of ``x``.

    ``model`` is a QONNX ModelWrapper (the export), executed with :func:`run_qonnx`. A model whose
    input takes only grid values (an integer datatype annotation, e.g. UINT8 pixels) is bisected on
    grid points: every probe is a valid input. Raises NoBoundaryError when ``x`` holds fewer than
    two classes (no boundary to find between its images)."""
    from qnnflow.flows.ir.inputs import input_grid

    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, not {pairs}")
    x = np.asarray(x, dtype=np.float32)
    grid = input_grid(model)
    snap = grid.snap if grid is not None and grid.exact else (lambda v: v)
    if len(x) < 2:
        raise NoBoundaryError(f"{len(x)} input: two inputs of different classes are needed to find a boundary")
    out = run_qonnx(model, x)
    dec = decisions(out)
    if len(np.unique(dec)) < 2:
        raise NoBoundaryError(
            f"the model gives every one of the {len(x)} inputs class {dec[0]}: no boundary between them"
        )
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(x), size=4 * pairs + 16)
    j = rng.integers(0, len(x), size=4 * pairs + 16)
    keep = dec[i] != dec[j]
    i, j = i[keep][:pairs], j[keep][:pairs]
    while len(i) < pairs:  # few classes or an unlucky draw: top up
        a, b = rng.integers(0, len(x), size=2)
        if dec[a] != dec[b]:
            i, j = np.append(i, a), np.append(j, b)
    xa, xb, cls = x[i], x[j], dec[i]
    shape = (-1,) + (1,) * (x.ndim - 1)
    lo = np.zeros(len(i), dtype=np.float64)  # invariant: class(lo) == cls, class(hi) != cls
    hi = np.ones(len(i), dtype=np.float64)
    for _ in range(steps):
        mid = (lo + hi) / 2
        same = decisions(run_qonnx(model, snap(_point(xa, xb, mid, shape)))) == cls
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    probes = snap(np.concatenate([_point(xa, xb, lo, shape), _point(xa, xb, hi, shape)]))
    pout = run_qonnx(model, probes)
    return Probes(
        inputs=probes,
        decisions=decisions(pout),
        pairs=np.stack([i, j], axis=1),
        margins=_margins(pout),
        test_margins=_margins(out),
        steps=steps,
    )


def _point(xa: np.ndarray, xb: np.ndarray, t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    t = t.reshape(shape).astype(np.float32)
    return (xa + t * (xb - xa)).astype(np.float32)
