"""A sweep's results: one row per point, kept in ``points.jsonl`` as each point finishes, and the
table made from it (``results.csv``, ``results.parquet``) in the order of the space.

The table holds only what the point's work determines (parameters and metrics); how long each unit
took and where it ran are in ``timings.csv``, so a resumed sweep's table equals an uninterrupted one's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from qnnflow.explore.space import Point

POINTS = "points.jsonl"
# placed resources per family: nextpnr's cell names -> the table's columns
_PLACED = {
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "brams": "DP16KD", "dsps": "MULT18X18D"},
    "ice40": {"luts": "ICESTORM_LC", "brams": "ICESTORM_RAM", "dsps": "ICESTORM_DSP"},
    "gowin": {"luts": "LUT4", "ffs": "DFF", "brams": "BSRAM", "dsps": "MULT18X18"},
}
TIMING_COLUMNS = ("name", "train_s", "compile_s", "sim_s", "implement_s", "train_node", "implement_node",
                  "train_cached", "compile_cached", "sim_cached", "implement_cached")  # fmt: skip


def make_row(point: Point, family: str, units: dict[str, dict], fidelity: str) -> tuple[dict, dict]:
    """The table row and the timing row of a point from its units' records (``units[kind]``)."""
    row: dict = {
        "name": point.name, "topology": point.topology, "precision": point.precision, "method": point.method,
        "folding": point.folding, "target_cycles": point.target_cycles(), "lut_budget": point.lut_budget,
        "board": point.board, "family": family,
        "clock_mhz": point.clock_mhz, "seed": point.seed, "fidelity": fidelity, "status": "ok", "error": None,
    }  # fmt: skip
    timing = {"name": point.name}
    for kind, rec in units.items():
        timing[f"{kind}_s"] = rec.get("seconds")
        timing[f"{kind}_cached"] = rec.get("cached")
        if kind in ("train", "implement"):
            timing[f"{kind}_node"] = rec.get("node")
        if rec.get("error") and row["error"] is None:  # the first unit's error; the later ones were not run
            row["status"] = "does-not-fit" if kind == "implement" else f"{kind}-error"
            row["error"] = rec["error"]
    t = units["train"]["metrics"]
    row.update(sw_accuracy=t.get("test_accuracy"), float_accuracy=t.get("float_test_accuracy"),
               flips=t.get("flips"), flip_rate=t.get("flip_rate"), jaccard=t.get("jaccard"),
               deployed=t.get("deployed", point.precision))  # fmt: skip
    row["accuracy"] = row["sw_accuracy"]
    c = units.get("compile", {}).get("metrics", {})
    est = c.get("estimates", {}).get("ecp5", {})
    row.update(ii_estimated=c.get("ii_estimated"), luts_est=est.get("LUT4"), brams_est=est.get("DP16KD"))
    s = units.get("sim", {}).get("metrics", {})
    if s:
        row.update(accuracy=s["hw_accuracy"], sim_frames=s["frames"], mismatches=s["mismatches"],
                   cycles_measured=s["cycles_measured"])  # fmt: skip
    _implemented(row, units.get("implement", {}).get("metrics", {}), family)
    return row, timing


def _implemented(row: dict, m: dict, family: str) -> None:
    if not m:
        return
    used = {k: v.get("used") for k, v in m.get("utilization", {}).items()}
    for col, cell in _PLACED[family].items():
        row[col] = used.get(cell, 0)
    if family == "gowin":  # carry LUTs count as LUTs
        row["luts"] = used.get("LUT4", 0) + used.get("ALU", 0)
    row["fmax_mhz"] = m.get("fmax_mhz")
    row["timing_met"] = m.get("timing_met")
    ii = row.get("cycles_measured") or row.get("ii_estimated")
    if row["fmax_mhz"] and ii:
        row["fps"] = row["fmax_mhz"] * 1e6 / ii
        row["fps_per_lut"] = row["fps"] / row["luts"] if row.get("luts") else None
    if family == "ecp5" and row.get("luts_est") and row.get("luts"):
        row["lut_est_error_pct"] = 100.0 * (row["luts_est"] - row["luts"]) / row["luts"]


def append(out: Path, row: dict, timing: dict) -> None:
    """Add a finished point to ``points.jsonl`` (flushed to disk before returning)."""
    with open(out / POINTS, "a") as f:
        f.write(json.dumps({"row": row, "timing": timing}, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def finished(out: Path) -> dict[str, dict]:
    """The points recorded so far, by name (a later line for a name replaces an earlier one; a
    line cut short by a kill is ignored)."""
    done: dict[str, dict] = {}
    path = out / POINTS
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[entry["row"]["name"]] = entry
    return done


def write_tables(out: Path, order: Sequence[str]) -> list[dict]:
    """``results.csv`` / ``results.parquet`` (and ``timings.csv``) of the recorded points, in ``order``;
    returns the rows."""
    import pandas as pd

    done = finished(out)
    rows = [done[n]["row"] for n in order if n in done]
    timings = [done[n]["timing"] for n in order if n in done]
    df = pd.DataFrame(rows)
    df.to_csv(out / "results.csv", index=False)
    df.to_parquet(out / "results.parquet", index=False)
    pd.DataFrame(timings, columns=list(TIMING_COLUMNS)).to_csv(out / "timings.csv", index=False)
    return rows
