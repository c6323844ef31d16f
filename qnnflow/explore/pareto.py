"""Objectives and Pareto fronts of a sweep's table.

An objective is ``"<y>:<x>"``: the metric ``y`` plotted against ``x`` (``accuracy:luts`` is accuracy
against LUTs). Each metric is either maximized or minimized (:data:`DIRECTION`). A point is on the
front when no other point of the same board is at least as good on both metrics and better on one;
resources of different FPGA families are not comparable, so every board has its own front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# metric -> +1 (more is better) or -1 (less is better)
DIRECTION = {
    "accuracy": 1, "sw_accuracy": 1, "float_accuracy": 1, "fps": 1, "fps_per_lut": 1, "fmax_mhz": 1,
    "luts": -1, "ffs": -1, "brams": -1, "dsps": -1, "luts_est": -1, "brams_est": -1, "jaccard": -1,
    "flips": -1, "flip_rate": -1, "ii_estimated": -1, "cycles_measured": -1,
}  # fmt: skip
LABELS = {
    "accuracy": "accuracy (hardware, test set)", "sw_accuracy": "accuracy (trained model)",
    "luts": "LUTs (placed)", "luts_est": "LUT4 (estimate)", "brams": "block RAMs (placed)",
    "brams_est": "DP16KD (estimate)", "fps": "frames/s at Fmax", "fps_per_lut": "frames/s per LUT at Fmax",
    "jaccard": "boundary Jaccard distance to the float model", "ffs": "flip-flops (placed)", "dsps": "DSPs (placed)",
    "fmax_mhz": "Fmax (MHz)", "flips": "test-set decisions differing from the float model",
}  # fmt: skip


def label(rows: Sequence[dict], metric: str) -> str:
    """The axis label of ``metric``; accuracy says whether it was measured on the simulated hardware."""
    if metric == "accuracy" and not any(r.get("sim_frames") for r in rows):
        return "accuracy (trained model, test set; not simulated)"
    return LABELS.get(metric, metric)


def parse_objective(spec: str) -> tuple[str, str]:
    """``"accuracy:luts"`` -> ("accuracy", "luts"); ValueError naming the metrics known."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"an objective is '<metric>:<metric>' (e.g. accuracy:luts), not {spec!r}")
    y, x = spec.split(":")
    for m in (y, x):
        if m not in DIRECTION:
            raise ValueError(f"unknown metric {m!r} in {spec!r}; metrics: {', '.join(sorted(DIRECTION))}")
    return y, x


def _value(row: dict, metric: str) -> float | None:
    v = row.get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


def resolve_metric(rows: Sequence[dict], metric: str) -> str:
    """``metric``, or its estimate (``luts`` -> ``luts_est``) when no row has the measured value."""
    if any(_value(r, metric) is not None for r in rows):
        return metric
    est = f"{metric}_est"
    return est if est in DIRECTION and any(_value(r, est) is not None for r in rows) else metric


def dominates(a: tuple[float, float], b: tuple[float, float], signs: tuple[int, int]) -> bool:
    better_eq = all(s * p >= s * q for p, q, s in zip(a, b, signs, strict=True))
    return better_eq and any(s * p > s * q for p, q, s in zip(a, b, signs, strict=True))


def front(rows: Sequence[dict], y: str, x: str) -> list[dict]:
    """The rows on the Pareto front of (``y``, ``x``) within each board, sorted by board then ``x``."""
    signs = (DIRECTION[y], DIRECTION[x])
    out = []
    for board in sorted({r["board"] for r in rows}):
        pts = [(r, (_value(r, y), _value(r, x))) for r in rows if r["board"] == board and r.get("status") == "ok"]
        pts = [(r, v) for r, v in pts if None not in v]
        out += [r for r, v in pts if not any(dominates(w, v, signs) for _, w in pts)]
    return sorted(out, key=lambda r: (r["board"], _value(r, x)))
