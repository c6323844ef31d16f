"""Closing figures of the RTL library: per module at its representative configuration, the ECP5
cells after Yosys ``synth_ecp5`` and the cycles per frame measured by its bench without stalls,
against the formula.

``python -m qnnflow.sim.figures [--out FILE.json]`` prints a Markdown table (and writes JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qnnflow.sim import cases, lint


def figures(modules: list[str] | None = None, *, cache_dir: Path | None = None) -> list[dict]:
    rows = []
    for case in cases.representative_cases():
        if modules and case.module not in modules:
            continue
        cfg = lint.REPRESENTATIVE[case.module]
        cells = lint.ecp5_cells(case.module)
        run = case.run(cache_dir=cache_dir)
        rows.append(
            {
                "module": case.module,
                "config": cfg.note,
                "params": cfg.params,
                "cells": {k: cells[k] for k in lint.ECP5_KEY_CELLS},
                "cycles_per_frame": run.report.get("cycles_per_frame"),
                "formula": run.report.get("formula"),
                "slack": run.report.get("slack"),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    head = "| module | configuration | LUT4 | FF | DP16KD | MULT18X18D | cycles/frame measured | formula |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        c = r["cells"]
        lines.append(
            f"| {r['module']} | {r['config']} | {c['LUT4']} | {c['TRELLIS_FF']} | {c['DP16KD']} | "
            f"{c['MULT18X18D']} | {r['cycles_per_frame']:g} | {r['formula']:g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qnnflow.sim.figures", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules (default: all)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--cache-dir", type=Path, help="simulation build cache (default build/sim_cache)")
    args = parser.parse_args(argv)
    rows = figures(args.modules or None, cache_dir=args.cache_dir)
    print(markdown(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
