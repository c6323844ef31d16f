"""The small end-to-end run: ``qnnflow build`` (what ``make bitstream`` runs) on the default digits
CNN, briefly trained, through every stage to an ECP5 bitstream and its report.

The hardware's decisions are checked against QONNX execution of the exported model (the
software reference, independent of the compiler and the RTL) on all 360 test images.

A failed implementation (the clock not met) is checked on a one-layer model for the iCEBreaker,
through the same commands: its place and route takes seconds, the digits CNN's a minute.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from qnnflow.cli import main

pytest.importorskip("torch")


# no decision map: the 128 x 128 default simulates 16,384 more frames, and the build's map stage is
# the first-hour test's (tests/qnnflow/test_first_hour.py; the map itself: tests/qnnflow/test_hwmap.py)
MAP = ("--hw-map", "0")
# the xc7z020 estimate (a minute of Yosys) is tests/flows/test_implement.py's
FAST = (*MAP, "--no-xilinx")


@pytest.mark.synth
def test_build_trains_compiles_simulates_and_implements_the_default_model(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["build", "--out", str(out), "--epochs", "3", "--clock-mhz", "25", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "build complete (train " in printed and printed.count("build complete") == 1
    assert "bitstream: bitstream:" not in printed
    for stage in ("train", "compile", "sim", "bitstream"):
        assert f"] {stage}: " in printed  # every stage ran and summarized itself

    from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx

    x, y = np.load(out / "test_inputs.npy"), np.load(out / "test_labels.npy")
    sw = decisions(run_qonnx(load_qonnx(out / "model.onnx"), x))
    hw = decisions(np.load(out / "sim" / "outputs.npy"))
    assert len(hw) == len(x) == 360
    assert np.array_equal(hw, sw), f"hardware differs from QONNX execution on images {np.flatnonzero(hw != sw)[:10]}"

    # inputs on the software decision boundary (either side of it, between test images)
    probes = np.load(out / "sim" / "boundary" / "probes.npy")
    sw_p = decisions(run_qonnx(load_qonnx(out / "model.onnx"), probes))
    a, b = np.split(sw_p, 2)
    assert len(probes) == 200 and np.all(a != b)  # each pair straddles the boundary
    hw_p = decisions(np.load(out / "sim" / "boundary" / "outputs.npy"))
    assert np.array_equal(hw_p, sw_p), f"hardware differs on boundary probes {np.flatnonzero(hw_p != sw_p)[:10]}"
    boundary = json.loads((out / "sim" / "boundary" / "results.json").read_text())
    assert boundary["hw_accuracy"] is None  # probes have no labels: the test labels are not theirs

    sim = json.loads((out / "sim" / "results.json").read_text())
    assert sim["mismatches"] == 0
    assert sim["hw_accuracy"] == pytest.approx(float((sw == y).mean()))
    assert abs(sim["cycles_per_frame_measured"] / sim["cycles_per_frame_estimated"] - 1) <= 0.05

    bit = out / "impl" / "ulx3s-85f" / "digits.bit"
    data = bit.read_bytes()
    assert data[:2] == b"\xff\x00" and b"LFE5U-85F" in data[:64]  # ecppack's header names the part
    assert len(data) > 100_000

    report = json.loads((out / "report.json").read_text())
    util = report["utilization"]
    assert 0 < util["LUT4"]["used"] < util["LUT4"]["available"]
    assert report["performance"]["fmax_mhz"] >= 25.0
    assert report["accuracy"]["mismatches"] == 0
    assert report["xc7z020_estimate"] is None and not (out / "impl" / "xc7z020").exists()  # --no-xilinx
    assert (out / "report.md").is_file()

    # an unchanged rerun reuses every stage, the bitstream included
    stamp = bit.stat().st_mtime_ns
    assert main(["build", "--out", str(out), "--epochs", "3", "--clock-mhz", "25", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "up to date (same RTL, settings and tools); reusing it" in printed
    assert bit.stat().st_mtime_ns == stamp

    # a test set replaced by hand: the report no longer vouches for the simulation made on the old one
    np.save(out / "test_inputs.npy", x[:10])
    from qnnflow.flows.implement.report import write_report

    stale = write_report(out, "ulx3s-85f")
    assert stale["simulation"] == "stale" and stale["accuracy"] is None
    assert "sim/results.json is stale" in (out / "report.md").read_text()
    np.save(out / "test_inputs.npy", x)


@pytest.mark.synth
def test_a_failed_implementation_leaves_no_bitstream_and_a_report_that_says_why(tmp_path, capsys):
    from qnnflow.flows.compile.fuzz import random_case

    case = random_case(79)  # one fully connected layer of bipolar weights on a bipolar input
    case.model.save(str(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", case.inputs)
    out = tmp_path / "b"
    assert main(["compile", str(tmp_path / "m.onnx"), "--out", str(out), "--inputs", str(tmp_path / "x.npy")]) == 0
    assert main(["sim", str(out), "--boundary-probes", "0"]) == 0
    ice40 = ["--board", "icebreaker", "--no-xilinx"]
    assert main(["bitstream", str(out), "--clock-mhz", "24", *ice40]) == 0
    bit = out / "impl" / "icebreaker" / "b.bin"
    assert bit.is_file() and json.loads((out / "report.json").read_text())["timing_met"] is True
    capsys.readouterr()

    # an xc7z020 estimate of an earlier run, which the failed run must not report as its own
    stale_xc7 = out / "impl" / "xc7z020" / "estimate.json"
    stale_xc7.parent.mkdir()
    stale_xc7.write_text(json.dumps({"used": {"LUT6": 1}, "available": {"LUT6": 53200}, "percent": {"LUT6": 0.0}}))
    assert main(["bitstream", str(out), "--clock-mhz", "200", *ice40]) == 3
    err = capsys.readouterr().err
    # the figures: the clock nextpnr reached, and a clock to try that it did reach
    found = re.search(r"timing not met on iCE40UP5K-SG48: clk: ([0-9.]+) MHz < 20[01]\.0 MHz; try --clock-mhz (\d+)",
                      err)  # fmt: skip
    assert found, err
    achieved, suggested = float(found.group(1)), int(found.group(2))
    assert suggested <= achieved < suggested + 1
    assert "nextpnr.log" in err  # the log that shows why
    assert not bit.exists() and not stale_xc7.exists()
    failed = json.loads((out / "report.json").read_text())
    assert failed["timing_met"] is False and failed["bitstream"] is None and failed["xc7z020_estimate"] is None
    assert json.loads((out / "impl" / "icebreaker" / "impl.json").read_text())["timing_met"] is False
    md = (out / "report.md").read_text()
    assert "Bitstream: not written" in md and "timing NOT met" in md
