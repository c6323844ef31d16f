"""FIFO depths sized by simulation, with a fallback only where deeper FIFOs are the cure.

1. Sizing run: the accelerator with every FIFO as deep as one frame of its stream (``beats + 2``),
   fed at the estimated II, its input beats spread evenly over each frame's II cycles (so the
   layers before the bottleneck cannot run ahead of the schedule), for a few frames; the harness
   records each FIFO's largest fill (beats in minus beats out). The same build is also run with
   free input to measure the frame period the deep FIFOs give. A stall of the deep design is an
   error (FlowError with the stall diagnosis): no FIFO depth explains it.
2. Sized design: depth = largest fill + 1 (the FIFO's ready depends only on its fill count, so
   that reproduces the sizing run's schedule), at least 2 (:func:`sized_depths`).
3. Check: the sized design, free-running, must finish every frame and reach the deep design's
   frame period (within 1 %). The deep depths are kept instead (the fallback) in two cases only:
   - the sized design deadlocks and the stall diagnosis names a full FIFO on a branch between a
     fork (DuplicateStreams) and its join (AddStreams): the branches need different buffering
     than the paced run showed (``kind`` "fork-join deadlock", the FIFOs named);
   - it finishes but slower than the deep design (``kind`` "slower frame period").
   Any other stall of the sized design (a layer that stops by itself, a timeout) is an error,
   raised as FlowError naming the layers and every stream's valid / ready.

The record (:func:`size_fifos`' second result) is written to ``rtl/fifo_sizing.json``; the
simulation copies it into ``sim/results.json`` ("fifo_sizing") and the report names a fallback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen import Design, generate
from qnnflow.sim.accel import BatchRun, Executable, build_batch, estimated_ii, pack_stream, run_batch
from qnnflow.sim.stalls import fork_join_fifos, stall_message

from qnnflow.errors import FlowError

SIZING_FRAMES = 4
DEEP_CAP = 1 << 16
PERIOD_SLACK = 0.01
RECORD = "fifo_sizing.json"


def deep_depths(design: Design) -> dict[str, int]:
    return {f.name: min(DEEP_CAP, max(2, f.beats + 2)) for f in design.fifos}


def sized_depths(fills: dict[str, int]) -> dict[str, int]:
    """Depth per FIFO from its largest fill in the paced run: fill + 1, at least 2."""
    return {name: max(2, fill + 1) for name, fill in fills.items()}


def load_record(rtl: Path | str) -> dict | None:
    """The sizing record of a generated ``rtl/`` folder, or None when it has none."""
    path = Path(rtl) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def size_fifos(model, rtl_out: Path, work: Path, hw_in: np.ndarray, cache: Path, log=print) -> tuple[Design, dict]:
    """Generate ``rtl_out`` with FIFO depths sized by simulation on the hardware inputs ``hw_in``
    (a few frames are enough; they are repeated if fewer). Returns the design and the record.

    Raises FlowError when the deep design stops, or the sized one stops anywhere but at a full
    FIFO between a fork and its join."""
    work = Path(work)
    frames = SIZING_FRAMES
    idx = np.arange(frames) % len(hw_in)
    x = hw_in[idx]

    deep, deep_design, exe = _deep_design(model, work / "rtl_deep", cache, log)
    est = estimated_ii(deep_design)
    words = pack_stream(x, deep_design.input)
    throttled, free = _sizing_runs(exe, deep_design, words, frames, est, work, log)
    fills = dict(zip((f.name for f in deep_design.fifos), throttled.fifo_fill, strict=True))
    sized = sized_depths(fills)

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
    check = run_batch(exe2.path, design, words, frames, work / "check", check=False)
    if check.status != "ok":
        fallback = _deadlock_fallback(design, check, frames, work / "check")
    else:
        record["sized_period"] = check.frame_period()
        fallback = _period_fallback(record["sized_period"], free.frame_period())
    record["fallback"] = fallback
    if fallback is not None:
        log(f"[sim] FIFO sizing fallback to one frame per FIFO: {fallback['reason']}")
        design = generate(model, rtl_out, deep)
        for row in record["fifos"]:
            row["depth"] = deep[row["name"]]
    else:
        total = sum(sized.values())
        log(f"[sim] FIFO depths sized: {total} beats in {len(sized)} FIFOs (deep: {sum(deep.values())})")
    (Path(rtl_out) / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return design, record


def _deep_design(model, rtl: Path, cache: Path, log) -> tuple[dict[str, int], Design, Executable]:
    """The design with every FIFO one frame deep, generated into ``rtl`` and built: its depths,
    the design and the executable."""
    probe = generate(model, rtl, None)
    deep = deep_depths(probe)
    deep_design = generate(model, rtl, deep)
    return deep, deep_design, build_batch(deep_design, cache, log=log, quick=True)  # runs 2 x SIZING_FRAMES


def _sizing_runs(
    exe: Executable, design: Design, words: np.ndarray, frames: int, est: int, work: Path, log
) -> tuple[BatchRun, BatchRun]:
    """The deep design paced at the estimated II ``est`` (for the FIFO fills) and free-running (for
    the frame period). Either one stopping is a FlowError: no FIFO depth explains it."""
    log(f"[sim] FIFO sizing: {frames} frames paced at {est} cycles per frame (the estimated II)")
    try:
        throttled = run_batch(exe.path, design, words, frames, work / "throttled", period=est)
        free = run_batch(exe.path, design, words, frames, work / "free")
    except FlowError as err:
        raise FlowError(
            f"FIFO sizing: the design with deep FIFOs (one frame each) stopped, which no FIFO depth explains:\n{err}"
        ) from err
    return throttled, free


def _deadlock_fallback(design: Design, check: BatchRun, frames: int, work: Path) -> dict:
    """The fallback for a sized design that stopped (the check run in ``work``): a fork-join
    deadlock at full FIFOs; any other stall raises FlowError with the stall diagnosis."""
    full = fork_join_fifos(design, check.probe_valid, check.probe_ready)
    if not full:
        msg = stall_message(
            design, check.probe_valid, check.probe_ready, check.stream_beats, check.status, check.cycles,
            int(check.report.get("last_move", 0)),
        )  # fmt: skip
        raise FlowError(
            "FIFO sizing: the design with sized FIFOs stopped, and not at a full FIFO between a fork and its "
            f"join, so deeper FIFOs would not help:\n{msg}\n  ({check.frames_done} of {frames} frames "
            f"completed; work folder {work})"
        )
    names = [f.name for f in full]
    return {
        "kind": "fork-join deadlock",
        "fifos": names,
        "reason": f"sized FIFOs deadlock between a fork and its join at the full FIFO(s) {', '.join(names)} "
        f"({check.status} at cycle {check.cycles}, {check.frames_done} of {frames} frames)",
    }


def _period_fallback(period: float | None, deep_period: float | None) -> dict | None:
    """The fallback for a sized design slower than the deep one (beyond the slack), else None."""
    if period is not None and deep_period is not None and period > deep_period * (1 + PERIOD_SLACK) + 1:
        return {
            "kind": "slower frame period",
            "fifos": [],
            "reason": f"sized FIFOs give {period:.0f} cycles per frame, deep ones {deep_period:.0f}",
        }
    return None
