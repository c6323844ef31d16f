"""Static checks of the RTL library: Verilator -Wall lint, configuration checks, Yosys synthesis
with ECP5 cell counts against a baseline (tests/hw/ecp5_baseline.json, made with the Yosys version
it records; ``python -m tests.hw.test_rtl_checks [MODULE ...]`` from the repository root regenerates it,
or only the entries of the modules named)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qnnflow.hw import library as rtl
from qnnflow.sim import cases, lint
from qnnflow.sim.runner import build

from qnnflow import toolchain
from qnnflow.errors import FlowError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIBRARY = sorted(lint.REPRESENTATIVE)
BASELINE_PATH = HERE / "ecp5_baseline.json"
REGENERATE = "`python -m tests.hw.test_rtl_checks` (from the repository root)"


@pytest.mark.rtl
@pytest.mark.parametrize("module", LIBRARY)
def test_verilator_lint_default_and_representative(module):
    lint.verilator_lint(module)
    lint.verilator_lint(module, lint.REPRESENTATIVE[module].params)


@pytest.mark.rtl
def test_verilator_lint_every_bench_configuration():
    for case in cases.all_cases():
        lint.verilator_lint(case.module, case.params)


# (module, parameters, the message the configuration check must print)
BAD_CONFIGS = [
    ("mvau", dict(MW=10, SIMD=4), r"MW \(10\) must be a multiple of SIMD \(4\)"),
    ("mvau", dict(MH=6, PE=4), r"PE \(4\) must divide MH \(6\)"),
    ("mvau", dict(IN_BIPOLAR=1, IN_W=2), r"a bipolar input is 1 bit wide, not IN_W = 2"),
    ("mvau", dict(NUM_T=0, OUT_W=4, ACC_W=8), r"without thresholds OUT_W \(4\) must equal ACC_W \(8\)"),
    ("thresholding", dict(CH=6, PE=4), r"PE \(4\) must divide CH \(6\)"),
    # checked in vvau itself and, for thresholding, in the shared threshold_count
    ("vvau", dict(W_BIPOLAR=1, W_W=2), r"bipolar weights are 1 bit wide, not W_W = 2"),
    ("vvau", dict(ACC_W=40), r"ACC_W \(40\) must be in 2..32"),
    ("thresholding", dict(NUM_T=0), r"NUM_T \(0\) must be at least 1"),
    ("thresholding", dict(IN_BIPOLAR=1, IN_W=2), r"a bipolar input is 1 bit wide, not IN_W = 2"),
    # the search, alone and as thresholding's with THR_SEARCH
    ("threshold_search", dict(NF=0), r"NF \(0\) must be at least 1"),
    ("thresholding", dict(NUM_T=0, THR_SEARCH=1), r"NUM_T \(0\) must be at least 1"),
    ("thresholding", dict(IN_BIPOLAR=1, IN_W=3, THR_SEARCH=1), r"a bipolar input is 1 bit wide, not IN_W = 3"),
    ("sliding_window", dict(K=2, STRIDE=3), r"1 <= STRIDE <= K; got K = 2, STRIDE = 3"),
    ("sliding_window", dict(K=3, PAD=3), r"PAD \(3\) must be in 0..K-1"),
    ("maxpool", dict(IFM_H=2, K=3), r"K \(3\) must be in 1..min\(IFM_H \(2\)"),
    ("tv_smooth", dict(CH=6, PE=4), r"PE \(4\) must divide CH \(6\)"),
    ("tv_smooth", dict(ELEM_W=2, LO=0, HI=5), r"the levels LO..HI \(0..5\) must be increasing and fit ELEM_W \(2"),
    ("tv_smooth", dict(FRAC_BITS=0), r"FRAC_BITS \(0\) must be in 1..16"),
    ("label_select", dict(NUM=20, OUT_W=4), r"OUT_W \(4\) bits cannot index NUM \(20\)"),
    (
        "label_select", dict(ELEM_W=8, HAS_OFFSET=1, OFF_W=8, SHIFT=2, VAL_W=9),
        r"VAL_W \(9\) must hold an ELEM_W \(8\)-bit value shifted by SHIFT \(2\)",
    ),  # fmt: skip
    ("label_select", dict(ELEM_W=8, HAS_MUL=1, MUL_W=20, VAL_W=16), r"MUL_W \(20\) must be in 1..VAL_W \(16\)"),
    ("width_converter", dict(IN_W=8, OUT_W=12), r"one of IN_W \(8\) and OUT_W \(12\) must be a multiple"),
    ("fifo", dict(DEPTH=1), r"DEPTH \(1\) must be at least 2"),
    ("duplicate_streams", dict(NUM_OUT=1), r"NUM_OUT \(1\) must be at least 2"),
    ("add_streams", dict(IN_W=8, OUT_W=4), r"OUT_W \(4\) must be at least IN_W \(8\)"),
]


@pytest.mark.rtl
@pytest.mark.parametrize(
    "module, params, message", BAD_CONFIGS, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(BAD_CONFIGS)]
)
def test_bad_configuration_stops_elaboration(module, params, message):
    with pytest.raises(FlowError, match=message):
        lint.verilator_lint(module, params)


@pytest.mark.rtl
def test_bad_configuration_stops_the_simulation_build(tmp_path):
    with pytest.raises(FlowError, match=r"MW \(12\) must be a multiple of SIMD \(8\)"):
        build("mvau", dict(MW=12, SIMD=8), cache_dir=tmp_path)


@pytest.mark.synth
def test_bad_configuration_stops_yosys(tmp_path):
    with pytest.raises(FlowError, match="Yosys rejects width_converter"):
        lint.yosys_check("width_converter", dict(IN_W=8, OUT_W=12), synth=False, workdir=tmp_path)


def test_dependencies_are_read_from_the_sources():
    # mvau and vvau share their counters, arithmetic and output queue, indirectly the queue's fifo
    # (and its optional output slice, skid_buffer)
    mac = ["adder_tree", "credit_queue", "fifo", "fold_counter", "mac_pipeline", "pipe_stage", "skid_buffer",
           "threshold_count", "threshold_search"]  # fmt: skip
    assert sorted(rtl.dependencies("mvau")) == mac
    assert sorted(rtl.dependencies("vvau")) == mac
    # indirect ones too: board tops -> power_on_reset; thresholding -> threshold_count -> adder_tree
    thr = ["adder_tree", "credit_queue", "fifo", "skid_buffer", "threshold_count", "threshold_search"]
    assert sorted(rtl.dependencies("thresholding")) == thr
    assert rtl.dependencies("threshold_search") == []
    assert rtl.sources("width_converter")[-1].name == "width_converter.sv"
    assert rtl.external_dependencies("mvau") == []


@pytest.mark.synth
@pytest.mark.parametrize("module", LIBRARY)
def test_ecp5_cells_match_baseline(module, tmp_path):
    baseline = json.loads(BASELINE_PATH.read_text())
    if (why := toolchain.baseline_mismatch(baseline.get("tools"), REGENERATE)) is not None:
        pytest.fail(f"{BASELINE_PATH.name}: {why}")
    want = baseline["modules"][module]
    assert want["params"] == lint.REPRESENTATIVE[module].params, "baseline is for other parameters; regenerate it"
    got = lint.ecp5_cells(module, workdir=tmp_path)
    for cell, n in want["cells"].items():
        allowed = max(baseline["slack_cells"], baseline["tolerance"] * n)
        assert abs(got[cell] - n) <= allowed, f"{module}: {cell} {got[cell]}, baseline {n} (+-{allowed:.0f})"


def regenerate(only: list[str] | None = None) -> None:
    """Measure every module's representative configuration again (or only the modules ``only``
    names, keeping the others' entries) and rewrite the baseline with the tool versions used
    (the notes and tolerances are kept)."""
    import tempfile

    old = json.loads(BASELINE_PATH.read_text())
    if only and (unknown := sorted(set(only) - set(LIBRARY))):
        raise ValueError(f"no representative configuration for {', '.join(unknown)}; known: {', '.join(LIBRARY)}")
    if only and old["tools"] != (tools := toolchain.versions("yosys")):
        raise ValueError(f"the baseline was made with {old['tools']}, not {tools}: regenerate every module")
    modules = {}
    with tempfile.TemporaryDirectory() as tmp:
        for module in [m for m in old["modules"] if m in LIBRARY] + [m for m in LIBRARY if m not in old["modules"]]:
            if only and module not in only:
                modules[module] = old["modules"][module]
                continue
            cells = lint.ecp5_cells(module, workdir=Path(tmp))
            modules[module] = {
                "params": dict(lint.REPRESENTATIVE[module].params),
                "note": old["modules"].get(module, {}).get("note") or lint.REPRESENTATIVE[module].note,
                "cells": {k: cells[k] for k in lint.ECP5_KEY_CELLS},
            }
            print(f"{module}: {modules[module]['cells']}", flush=True)
    doc = {"tools": toolchain.versions("yosys"), "tolerance": old["tolerance"], "slack_cells": old["slack_cells"]}
    doc["modules"] = modules
    BASELINE_PATH.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {BASELINE_PATH}")


if __name__ == "__main__":
    import sys

    regenerate(sys.argv[1:] or None)
