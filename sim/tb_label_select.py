"""cocotb bench of ``hw/label_select.sv`` against :func:`qnnflow.flows.ir.kernels.label_select`.

A frame is NUM values in NUM/PE beats and gives one index. Values are drawn from a narrow range
so that ties (which must go to the lowest index) are common. With a per-class map (HAS_MUL,
HAS_OFFSET, SHIFT; constants in the case settings) the frames also hold the extremes (all-max,
all-min, alternating) and pairs of classes built to tie after the map, every other class at the
input that makes its value least.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir import kernels
from qnnflow.sim.streams import Sink, Source, Stimulus, beats, load_config, traffic_tests, write_report

CFG = load_config()
P = CFG["params"]
MAPPED = bool(P.get("HAS_MUL") or P.get("HAS_OFFSET") or P.get("SHIFT"))


def ports(dut):
    return [Source(dut, width=P["PE"] * P["ELEM_W"])], [Sink(dut, width=P["OUT_W"])]


def _values(x: np.ndarray) -> np.ndarray:
    """The values the module compares (the inputs without a map), range-checked against VAL_W."""
    if not MAPPED:
        return x
    v = (x * np.array(CFG["mul"]) << P.get("SHIFT", 0)) + np.array(CFG["offset"])
    vlo, vhi = kernels.value_range(P["VAL_W"], True)
    if v.min() < vlo or v.max() > vhi:
        raise ValueError(f"a mapped value in [{v.min()}, {v.max()}] does not fit VAL_W = {P['VAL_W']}")
    return v


def _tie_frames(rng, lo: int, hi: int, count: int) -> np.ndarray:
    """Frames where two classes c < d reach the same mapped value and every other class sits at its
    least value: the module must answer c."""
    mul, off, shift, n = np.array(CFG["mul"]), np.array(CFG["offset"]), P.get("SHIFT", 0), P["NUM"]
    least = np.where(mul >= 0, lo, hi)
    xs = np.arange(lo, hi + 1)
    frames = []
    for _ in range(count * 20):
        c, d = sorted(rng.choice(n, size=2, replace=False))
        if mul[d] == 0:
            continue
        xc = int(rng.integers(lo, hi + 1))
        target = (int(mul[c]) * xc << shift) + int(off[c])
        match = xs[((mul[d] * xs) << shift) + off[d] == target]
        if len(match):
            f = least.copy()
            f[c], f[d] = xc, int(rng.choice(match))
            frames.append(f)
        if len(frames) == count:
            break
    return np.array(frames, dtype=np.int64).reshape(-1, n)


def stimulus(rng) -> Stimulus:
    lo, hi = kernels.value_range(P["ELEM_W"], bool(P["SIGNED"]))
    x = rng.integers(lo, hi + 1, size=(CFG["frames"], P["NUM"]))
    x[::3] = rng.integers(max(lo, hi - 2), hi + 1, size=x[::3].shape)  # many ties at the top
    # values within a few hundred of a multiple of 256: wide values compared as two halves
    # (hw/label_select.sv greater_split) then often tie on the upper half, and their lower halves
    # cross 0x..7f/0x..80 and 0x..ff/0x..00
    for f in range(1, len(x), 3):
        c = int(rng.integers(lo, hi + 1)) & ~0xFF
        x[f] = np.clip(rng.integers(c - 300, c + 300, size=P["NUM"]), lo, hi)
    if MAPPED:
        alt = np.where(np.arange(P["NUM"]) % 2 == 0, hi, lo)
        corners = np.array([[hi] * P["NUM"], [lo] * P["NUM"], alt, lo + hi - alt])
        x = np.concatenate([corners, _tie_frames(rng, lo, hi, CFG["frames"] // 3), x])
    v = _values(x)
    if MAPPED:
        y = kernels.label_select(x, 1, np.array(CFG["mul"]), np.array(CFG["offset"]), P.get("SHIFT", 0))
    else:
        y = kernels.label_select(x, 1)
    write_report("tied_frames", int(np.sum(np.sum(v == v.max(axis=1, keepdims=True), axis=1) > 1)))
    return Stimulus(
        inputs=[[beats(x, P["ELEM_W"], P["PE"], signed=bool(P["SIGNED"]), port="input")]],
        expect=[[beats(y, P["OUT_W"], 1, signed=False, port=f"expected index (OUT_W {P['OUT_W']})")]],
        beats_per_frame=1,
        formula=P["NUM"] // P["PE"],
    )


# the three traffic modes (no stalls, random input idles, random output backpressure), one test each
traffic = traffic_tests(ports, stimulus)
