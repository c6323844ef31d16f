"""The stimulus the MVAU and VVAU benches share (``sim/tb_mvau.py``, ``sim/tb_vvau.py``): the two
corner vectors first (all-max, all-min: against the case's all-max and all-min weight rows they
reach both accumulator extremes), then random ones; expected outputs from the module's numpy
kernel, range-checked against OUT_W, never wrapped."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qnnflow.sim.cases import corner_inputs
from qnnflow.sim.streams import Stimulus, beats


def mac_stimulus(rng, cfg: dict, kernel: Callable, size: int, per_beat: int, count: int, cycles: int) -> Stimulus:
    """``count`` random inputs of ``size`` elements (after the corners) cut into beats of
    ``per_beat``; ``kernel`` (kernels.mvau or kernels_dw.vvau) gives the expected outputs. A frame is
    one input: NF output beats (rows / channels over PE) every ``cycles`` cycles without stalls."""
    p = cfg["params"]
    lo, hi = cfg["x_range"]
    if p["IN_BIPOLAR"]:
        x = rng.choice(np.array([-1, 1]), size=(count, size))
    else:
        x = rng.integers(lo, hi + 1, size=(count, size))
    x = np.concatenate([corner_inputs(size, (lo, hi)), x])
    y = kernel(
        x,
        np.array(cfg["weights"]),
        thresholds=np.array(cfg["thresholds"]) if p["NUM_T"] else None,
        out_offset=p["OUT_OFFSET"],
        x_bipolar=bool(p["IN_BIPOLAR"]),
        w_bipolar=bool(p["W_BIPOLAR"]),
    )
    x_beats = beats(x, p["IN_W"], per_beat, signed=bool(p["IN_SIGNED"]), bipolar=bool(p["IN_BIPOLAR"]), port="input")
    out_signed = not p["NUM_T"] or p["OUT_OFFSET"] < 0  # without thresholds: the signed accumulator
    port = f"expected output (OUT_W {p['OUT_W']}, ACC_W {p['ACC_W']})"
    return Stimulus(
        inputs=[[x_beats]],
        expect=[[beats(y, p["OUT_W"], p["PE"], signed=out_signed, port=port)]],
        beats_per_frame=y.shape[1] // p["PE"],
        formula=cycles,
    )
