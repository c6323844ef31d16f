"""Calibration-to-test stopping: choose a PTQ-W bit width from calibration metrics alone.

A *sweep* is a list of :class:`SweepPoint` records, one per bit width (of one granularity), each
holding the metrics of the quantized model against the reference on the calibration split and
on the held-out split. The rules below look only at the calibration metrics; the held-out ones
are what the caller reports for the chosen width.

Both rules walk from the widest bit width downwards and stop at the first width that fails, so
the choice is the lowest width such that it *and every wider width* pass (a width that passes
only below a failing one is not reached). If the widest width already fails, the choice is the
widest width and ``passed`` is False.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SweepPoint:
    bits: int
    granularity: str
    cal: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    rule: str
    bits: int
    passed: bool  # False when even the widest width failed the rule
    point: SweepPoint


def _walk_down(sweep: Sequence[SweepPoint], ok: Callable[[SweepPoint], bool], rule: str) -> Choice:
    if not sweep:
        raise ValueError("the stopping rule needs a non-empty sweep")
    ordered = sorted(sweep, key=lambda p: -p.bits)
    if len({p.bits for p in ordered}) != len(ordered):
        raise ValueError(f"a sweep must hold each bit width once, found {[p.bits for p in ordered]}")
    chosen: SweepPoint | None = None
    for p in ordered:
        if not ok(p):
            break
        chosen = p
    if chosen is None:
        return Choice(rule, ordered[0].bits, False, ordered[0])
    return Choice(rule, chosen.bits, True, chosen)


def select_by_boundary(sweep: Sequence[SweepPoint], jaccard_tol: float, flip_tol: float) -> Choice:
    """Lowest width with calibration slice Jaccard <= ``jaccard_tol`` and flip rate <= ``flip_tol``."""
    return _walk_down(
        sweep,
        lambda p: p.cal["slice_jaccard_distance"] <= jaccard_tol and p.cal["flip_rate"] <= flip_tol,
        f"calibration boundary: slice Jaccard <= {jaccard_tol} and flip rate <= {flip_tol}",
    )


def select_by_accuracy(sweep: Sequence[SweepPoint], accuracy_tol: float) -> Choice:
    """Lowest width whose calibration accuracy >= the reference's calibration accuracy - ``accuracy_tol``."""
    return _walk_down(
        sweep,
        lambda p: p.cal["accuracy"] >= p.cal["accuracy_ref"] - accuracy_tol,
        f"calibration accuracy >= reference - {accuracy_tol}",
    )


def pearson_r(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two equal-length sequences; NaN when either is constant or too short."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"pearson_r needs equal lengths, found {len(x)} and {len(y)}")
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


JACCARD_TOLS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
FLIP_TOLS = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.05)


def sensitivity(
    sweep: Sequence[SweepPoint],
    jaccard_tol: float,
    flip_tol: float,
    jaccard_tols: Sequence[float] = JACCARD_TOLS,
    flip_tols: Sequence[float] = FLIP_TOLS,
) -> list[dict]:
    """The boundary rule's choice as each tolerance varies and the other keeps its recorded value
    (``vary`` "jaccard_tol" / "flip_tol"), and on the whole grid of both (``vary`` "both"): one row
    per setting, with the chosen width and its held-out flips and Jaccard distance."""
    rows = []
    settings = [("jaccard_tol", t, (t, flip_tol)) for t in jaccard_tols]
    settings += [("flip_tol", t, (jaccard_tol, t)) for t in flip_tols]
    settings += [("both", None, (j, f)) for j in jaccard_tols for f in flip_tols]
    for vary, t, (j, f) in settings:
        c = select_by_boundary(sweep, j, f)
        rows.append({
            "vary": vary,
            "tol": t,
            "jaccard_tol": j,
            "flip_tol": f,
            "bits": c.bits,
            "passed": c.passed,
            "test_flips": c.point.test["flips"],
            "test_flip_rate": c.point.test["flip_rate"],
            "test_jaccard": c.point.test["slice_jaccard_distance"],
        })  # fmt: skip
    return rows
