"""Place and route over several nextpnr seeds from one synthesis: the board top with a build's
accelerator synthesized once, nextpnr once per seed, nothing packed. For benchmarks: Fmax moves by a
few MHz from seed to seed, so a figure is the median over seeds (``qnnflow.bench.finn``).

Written into ``impl/<board>-seeds/`` (the bitstream stage's ``impl/<board>/`` is left alone)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qnnflow.flows.implement.boards import board_spec, clock_settings
from qnnflow.flows.implement.design import accelerator_design, uart_clks_per_bit
from qnnflow.flows.implement.pnr import _place_and_route, _result, _Run, _stage_sources, _synthesize, _top_params

from qnnflow import toolchain
from qnnflow.link import DEFAULT_BAUD


def seed_sweep(
    build_dir: Path | str,
    board: str,
    clock_mhz: float,
    seeds: tuple[int, ...],
    progress: Callable[[str], None] | None = print,
) -> dict:
    """Yosys once, then nextpnr with each of ``seeds`` (``--timing-allow-fail``: a missed clock is
    recorded, not raised). Per seed: Fmax (the slowest clock domain), whether the clock was met,
    nextpnr's utilization and seconds; and the synthesis' cells and seconds."""
    if not seeds:
        raise ValueError("seed_sweep needs at least one nextpnr seed")
    build_dir = Path(build_dir)
    spec = board_spec(board)
    design = accelerator_design(build_dir)
    clock = clock_settings(spec, clock_mhz)
    tools = toolchain.require("yosys", f"nextpnr-{spec.family}")
    run = _Run(build_dir / "impl" / f"{spec.name}-seeds", spec, tools, progress)
    src_files = _stage_sources(run, design)
    params = _top_params(clock, design.link_format, spec, uart_clks_per_bit(clock.mhz * 1e6, DEFAULT_BAUD))
    cells = _synthesize(run, design, src_files, params)
    runs = []
    for seed in seeds:
        run.say(f"  nextpnr seed {seed}")
        report = _place_and_route(run, clock, seed, cells)
        res = _result(run, clock_mhz, clock, DEFAULT_BAUD, seed, report, cells, design.link_format)
        runs.append({
            "seed": seed,
            "fmax_mhz": min((v["achieved"] for v in res.fmax.values()), default=None),
            "fmax_per_clock": res.fmax,
            "timing_met": res.timing_met,
            "utilization": res.utilization,
            "pnr_seconds": round(run.seconds["pnr"], 2),
        })  # fmt: skip
    return {
        "board": spec.name,
        "part": spec.part,
        "clock_mhz": round(clock.mhz, 4),
        "synth_seconds": round(run.seconds["synth"], 2),
        "yosys_cells": cells,
        "runs": runs,
        "tools": {name: tool.label for name, tool in tools.items()},
        "folder": str(run.out),
    }
