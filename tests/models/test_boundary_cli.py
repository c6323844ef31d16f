"""`qnnflow boundary` end to end on a tiny build folder (1 training epoch, a coarse slice grid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from qnnflow.models.train import train_and_export

from qnnflow.cli import main
from qnnflow.config import BuildConfig


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("boundary") / "digits"
    train_and_export(BuildConfig(name="digits", preset="digits-cnn-w2a2", epochs=1), out)
    return out


def test_boundary_command_writes_json_and_plots(tiny_build, capsys):
    out = tiny_build / "bnd"
    rc = main(["boundary", str(tiny_build), "--out", str(out), "--bits", "3", "4", "8",
               "--granularity", "per-tensor", "--grid", "24", "--rounding-steps", "20"])
    assert rc == 0
    result = json.loads((out / "boundary.json").read_text())
    for key in ("reference", "config", "definitions", "slices", "ptq_sweep", "stopping",
                "cal_test_jaccard_pearson_r", "rounding", "qat", "paper_comparison", "plots"):
        assert key in result, key
    assert result["config"]["metrics"]["grid"] == 24
    assert result["config"]["metrics"]["band_quantile"] == 0.1
    assert [r["bits"] for r in result["ptq_sweep"]] == [3, 4, 8]
    row = result["ptq_sweep"][-1]["test"]
    for key in ("accuracy", "flip_rate", "median_boundary_shift", "median_normal_angle_deg",
                "slice_jaccard_distance", "junction_cells", "band_flip_rate", "outside_flip_rate",
                "band_pair_order_flip_rate"):
        assert key in row, key
    assert row["n_points"] == result["split"]["test"]
    assert set(result["stopping"]["per-tensor"]) == {"by_boundary", "by_accuracy"}
    assert set(result["rounding"]) == {"rtn", "adaround", "adaround_gap"}
    # weights + activations: one row per width, and the stopping rules on it
    assert [r["bits"] for r in result["ptq_wa_sweep"]] == [3, 4, 8]
    assert set(result["stopping_wa"]) == {"by_boundary", "by_accuracy"}
    # the sensitivity sweep: the rule's choice recomputed from the recorded sweep at every tolerance
    sens = result["sensitivity"]["PTQ-W per-tensor"]
    assert {r["vary"] for r in sens} == {"jaccard_tol", "flip_tol", "both"}
    assert len([r for r in sens if r["vary"] == "both"]) == 13 * 6
    for r in sens:
        rows = sorted(result["ptq_sweep"], key=lambda q: -q["bits"])
        expect = rows[0]
        for q in rows:  # walk down while the calibration metrics pass both tolerances
            if q["cal"]["slice_jaccard_distance"] > r["jaccard_tol"] or q["cal"]["flip_rate"] > r["flip_tol"]:
                break
            expect = q
        assert r["bits"] == expect["bits"] and r["test_flips"] == expect["test"]["flips"], r
    assert (out / "sensitivity.png").is_file() and (out / "sweep_wa.png").is_file()
    assert result["qat"][str(tiny_build)]["preset"] == "digits-cnn-w2a2"
    for name in ("sweep.png", "cal_vs_test_jaccard.png", "slice_ptq4.png", "slice_adaround_gap.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 1000, name
    assert all(Path(p).is_file() for p in result["plots"])
    assert "8-bit PTQ-W" in capsys.readouterr().out


def test_boundary_command_errors_are_one_message(tmp_path, tiny_build, capsys):
    assert main(["boundary", str(tmp_path / "missing")]) == 2
    assert "build folder not found" in capsys.readouterr().err
    assert main(["boundary", str(tiny_build), "--bits", "8", "--rounding-bits", "4"]) == 2
    assert "rounding_bits (4) must be one of the swept widths (8,)" in capsys.readouterr().err
