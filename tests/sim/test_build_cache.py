"""Verilator builds of the stitched simulation: Verilator's runtime library is compiled once per
user, not once per build folder, and a quick build (FIFO sizing's few frames) compiles the model
unoptimized; both executables give the same outputs as the dataflow graph."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.codegen import generate
from qnnflow.flows.compile.fuzz import random_case
from qnnflow.flows.compile.fuzz_check import run_case
from qnnflow.sim import accel, build_cache
from qnnflow.sim.stitch import load_model

pytestmark = pytest.mark.rtl

RUNTIME_SOURCES = ("verilated.cpp", "verilated_threads.cpp")


def _compiled(log: str) -> set[str]:
    """The runtime sources a build's make log compiled."""
    return {src for src in RUNTIME_SOURCES if f"/{src}" in log}


def test_the_runtime_is_compiled_once_for_every_build_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("QNNFLOW_CACHE", str(tmp_path / "user_cache"))
    case = random_case(79)  # a small graph: one fully connected layer, XNOR, logits
    assert run_case(case, tmp_path / "b").kind == "exact"
    model = load_model(tmp_path / "b")
    design = generate(model, tmp_path / "b" / "rtl")
    io = accel.HostIO(model, design)
    hw_in, want, _ = io.run(case.inputs)  # the dataflow graph's hardware streams
    words = accel.pack_stream(hw_in, design.input)

    outputs, logs = [], []
    # two build folders (two builds of one design), then a quick build in a third
    for folder, quick in (("one", False), ("two", False), ("three", True)):
        exe = accel.build_batch(design, tmp_path / folder / "verilator", log=lambda _m: None, quick=quick)
        assert exe.built
        logs.append((exe.path.parent / "build.log").read_text())
        run = accel.run_batch(exe.path, design, words, len(hw_in), tmp_path / folder / "run")
        outputs.append(run.outputs)
    assert _compiled(logs[0]) == set(RUNTIME_SOURCES)
    assert _compiled(logs[1]) == set() and _compiled(logs[2]) == set()
    # the model's own C++: optimized (Verilator's default -Os) unless quick
    assert "-Os" in logs[1] and " -O0 " not in logs[1] and " -O0 " in logs[2]
    for got in outputs:
        np.testing.assert_array_equal(got, want.reshape(got.shape))


def test_an_unwritable_user_cache_falls_back_to_the_build_folder(tmp_path, monkeypatch):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("QNNFLOW_CACHE", str(blocked))
    runtime = build_cache.runtime_dir(tmp_path / "build_cache", verilator="v", version="1")
    assert runtime.parent == tmp_path / "build_cache" / "_runtime"
    monkeypatch.setenv("QNNFLOW_CACHE", str(tmp_path / "user"))
    assert build_cache.runtime_dir(tmp_path / "build_cache", verilator="v", version="1").parent == (
        tmp_path / "user" / "_runtime"
    )
