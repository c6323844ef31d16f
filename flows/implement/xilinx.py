"""The xc7z020 resource estimate: Yosys ``synth_xilinx`` of the accelerator alone (no shell), for
comparison with FINN's published designs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from qnnflow.flows.implement.design import AcceleratorDesign, accelerator_design, copy_sources
from qnnflow.flows.implement.pnr import stat_cells
from qnnflow.flows.implement.tools import run_tool

from qnnflow import toolchain

XC7Z020 = {"LUT6": 53200, "FF": 106400, "BRAM18": 280, "DSP48": 220}

_LUT_SITES = {
    "LUT1": 1,
    "LUT2": 1,
    "LUT3": 1,
    "LUT4": 1,
    "LUT5": 1,
    "LUT6": 1,
    "LUT6_2": 1,
    "SRL16E": 1,
    "SRLC32E": 1,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1D": 4,
    "RAM32M": 4,
    "RAM64M": 4,
    "RAM32M16": 8,
    "RAM64M8": 8,
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "RAM128X1S": 2,
    "RAM256X1S": 4,
}
_FF = ("FDRE", "FDSE", "FDCE", "FDPE")


def xc7_used(cells: dict[str, int]) -> dict[str, int]:
    """LUT6 (LUT sites, counting LUT RAM and shift registers), FF, BRAM18 (a RAMB36 counts 2) and
    DSP48 of a Yosys ``synth_xilinx`` cell count."""
    return {
        "LUT6": sum(n * cells.get(k, 0) for k, n in _LUT_SITES.items()),
        "FF": sum(cells.get(k, 0) for k in _FF),
        "BRAM18": cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0),
        "DSP48": cells.get("DSP48E1", 0),
    }


def xilinx_estimate(
    build_dir: Path | str,
    *,
    design: AcceleratorDesign | None = None,
    progress: Callable[[str], None] | None = print,
) -> dict:
    """Yosys ``synth_xilinx -family xc7`` of the accelerator alone: LUT6 (LUT sites, counting
    LUTRAM and shift registers), FF, BRAM18 (a RAMB36 counts 2) and DSP48 against the xc7z020.
    Written to ``impl/xc7z020/estimate.json``."""
    build_dir = Path(build_dir)
    design = design or accelerator_design(build_dir)
    out = build_dir / "impl" / "xc7z020"
    if out.exists():
        shutil.rmtree(out)
    names = copy_sources(design.sources, out / "src")
    copy_sources(design.data_files, out)
    script = [
        f"read_verilog -defer -sv {' '.join(f'src/{n}' for n in names)}",
        f"synth_xilinx -family xc7 -top {design.top}",
        "tee -q -o synth_stat.json stat -json",
    ]
    (out / "synth.ys").write_text("\n".join(script) + "\n")
    if progress:
        progress("  xc7z020 estimate (Yosys synth_xilinx) ...")
    seconds = run_tool(
        toolchain.find("yosys"),
        ["-q", "-l", "yosys.log", "synth.ys"],
        cwd=out,
        log=out / "yosys.stdout.log",
        what="Yosys synth_xilinx",
        tool_log=out / "yosys.log",
        progress=progress,
    )
    cells = stat_cells(out / "synth_stat.json")
    used = xc7_used(cells)
    estimate = {
        "device": "xc7z020",
        "used": used,
        "available": XC7Z020,
        "percent": {k: round(100 * used[k] / XC7Z020[k], 2) for k in used},
        "cells": cells,
        "seconds": round(seconds, 2),
        "log": str(out / "yosys.log"),
        "note": "Yosys synth_xilinx, not Vivado: a resource estimate before placement",
        "tools": toolchain.versions("yosys"),
    }
    (out / "estimate.json").write_text(json.dumps(estimate, indent=1, sort_keys=True))
    return estimate
