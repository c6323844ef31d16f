"""FIFO depths sized by simulation, with a safe fallback.

1. Sizing run: the accelerator with every FIFO as deep as one frame of its stream (``beats + 2``),
   fed at the estimated II, its input beats spread evenly over each frame's II cycles (so the
   layers before the bottleneck cannot run ahead of the schedule), for a few frames; the harness
   records each FIFO's largest fill (beats in minus beats out). The same build is also run with
   free input to measure the frame period the deep FIFOs give.
2. Sized design: depth = largest fill + 1 (the FIFO's ready depends only on its fill count, so
   that reproduces the sizing run's schedule), at least 2.
3. Check: the sized design, free-running, must finish every frame and reach the deep design's
   frame period (within 1 %). Otherwise the deep depths are kept (the fallback) and the reason is
   recorded in ``fifo_sizing.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen import Design, generate
from qnnflow.sim.accel import build_batch, estimated_ii, pack_stream, run_batch

from qnnflow.errors import FlowError

SIZING_FRAMES = 4
DEEP_CAP = 1 << 16
PERIOD_SLACK = 0.01


def deep_depths(design: Design) -> dict[str, int]:
    return {f.name: min(DEEP_CAP, max(2, f.beats + 2)) for f in design.fifos}


def size_fifos(model, rtl_out: Path, work: Path, hw_in: np.ndarray, cache: Path, log=print) -> tuple[Design, dict]:
    """Generate ``rtl_out`` with FIFO depths sized by simulation on the hardware inputs ``hw_in``
    (a few frames are enough; they are repeated if fewer). Returns the design and the record."""
    work = Path(work)
    frames = SIZING_FRAMES
    idx = np.arange(frames) % len(hw_in)
    x = hw_in[idx]

    probe = generate(model, work / "rtl_deep", None)
    deep = deep_depths(probe)
    deep_design = generate(model, work / "rtl_deep", deep)
    est = estimated_ii(deep_design)
    exe = build_batch(deep_design, cache, log=log)
    words = pack_stream(x, deep_design.input)
    log(f"[sim] FIFO sizing: {frames} frames paced at {est} cycles per frame (the estimated II)")
    throttled = run_batch(exe.path, deep_design, words, frames, work / "throttled", period=est)
    free = run_batch(exe.path, deep_design, words, frames, work / "free")
    fills = dict(zip((f.name for f in deep_design.fifos), throttled.fifo_fill, strict=True))
    sized = {name: max(2, fill + 1) for name, fill in fills.items()}

    design = generate(model, rtl_out, sized)
    exe2 = build_batch(design, cache, log=log)
    record = {
        "frames": frames,
        "estimated_ii": est,
        "deep_period": free.frame_period(),
        "fifos": [
            {"name": f.name, "beats_per_frame": f.beats, "largest_fill": fills[f.name], "depth": sized[f.name]}
            for f in deep_design.fifos
        ],
        "build_seconds": exe.seconds + exe2.seconds,
    }
    reason = None
    try:
        check = run_batch(exe2.path, design, words, frames, work / "check")
        period = check.frame_period()
        record["sized_period"] = period
        deep_period = free.frame_period()
        if period is not None and deep_period is not None and period > deep_period * (1 + PERIOD_SLACK) + 1:
            reason = f"sized FIFOs give {period:.0f} cycles per frame, deep ones {deep_period:.0f}"
    except FlowError as err:
        reason = f"sized FIFOs stop the stream: {str(err).splitlines()[0]}"
    if reason is not None:
        log(f"[sim] FIFO sizing fallback to one frame per FIFO: {reason}")
        design = generate(model, rtl_out, deep)
        record["fallback"] = reason
        for row in record["fifos"]:
            row["depth"] = deep[row["name"]]
    else:
        record["fallback"] = None
        total = sum(sized.values())
        log(f"[sim] FIFO depths sized: {total} beats in {len(sized)} FIFOs (deep: {sum(deep.values())})")
    (Path(rtl_out) / "fifo_sizing.json").write_text(json.dumps(record, indent=1) + "\n")
    return design, record
