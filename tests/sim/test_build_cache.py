"""Verilator builds of the stitched simulation: Verilator's runtime library is compiled once per
user, not once per build folder, and a quick build (FIFO sizing's few frames) compiles the model
unoptimized; both executables give the same outputs as the dataflow graph. Every C++ file of a
build, the stitched simulation's and a cocotb bench's, reads Verilator's headers precompiled, and a
cocotb build gives VPI access to its top module's signals only."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

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


def _headers_read(build: Path, log: str) -> dict[str, str]:
    """Source file -> the precompiled header GCC read for it (or "none"), for each compile line of
    a build's make log, found by compiling it again with -H (the "!" line names the file used)."""
    used = {}
    for line in log.splitlines():
        argv = shlex.split(line)
        if not argv or argv[0] != "c++" or "-c" not in argv or "-x" in argv:
            continue
        if "-o" in argv:
            del argv[argv.index("-o") : argv.index("-o") + 2]
        argv = [a for a in argv if a != "-MMD"] + ["-H", "-fsyntax-only"]
        err = subprocess.run(argv, cwd=build, capture_output=True, text=True, check=True).stderr
        pch = [ln.split()[1] for ln in err.splitlines() if ln.startswith("! ")]
        used[Path(argv[argv.index("-c") + 1]).name] = Path(pch[0]).name if pch else "none"
    return used


def test_the_runtime_is_compiled_once_for_every_build_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("QNNFLOW_CACHE", str(tmp_path / "user_cache"))
    case = random_case(79)  # a small graph: one fully connected layer, XNOR, logits
    assert run_case(case, tmp_path / "b").kind == "exact"
    model = load_model(tmp_path / "b")
    design = generate(model, tmp_path / "b" / "rtl")
    io = accel.HostIO(model, design)
    hw_in, want, _ = io.run(case.inputs)  # the dataflow graph's hardware streams
    words = accel.pack_stream(hw_in, design.input)

    outputs, logs, folders = [], [], []
    # two build folders (two builds of one design), then a quick build in a third
    for folder, quick in (("one", False), ("two", False), ("three", True)):
        exe = accel.build_batch(design, tmp_path / folder / "verilator", log=lambda _m: None, quick=quick)
        assert exe.built
        logs.append((exe.path.parent / "build.log").read_text())
        folders.append(exe.path.parent)
        run = accel.run_batch(exe.path, design, words, len(hw_in), tmp_path / folder / "run")
        outputs.append(run.outputs)
    assert _compiled(logs[0]) == set(RUNTIME_SOURCES)
    assert _compiled(logs[1]) == set() and _compiled(logs[2]) == set()
    # the model's own C++: optimized (Verilator's default -Os) unless quick
    assert "-Os" in logs[1] and " -O0 " not in logs[1] and " -O0 " in logs[2]
    # Verilator's headers precompiled at the level each file is compiled at (the main at -Os)
    model = f"V{design.probe_top}__ALL.cpp"
    main = "accel_main.cpp"
    assert _headers_read(folders[1], logs[1]) == {model: "Os.gch", main: "Os.gch"}
    assert _headers_read(folders[2], logs[2]) == {model: "O0.gch", main: "O0.gch"}
    for got in outputs:
        np.testing.assert_array_equal(got, want.reshape(got.shape))


def test_a_bench_build_reads_the_precompiled_headers(tmp_path):
    from qnnflow.sim import runner

    build = runner.build("skid_buffer", {"DATA_W": 13}, cache_dir=tmp_path / "cache")
    used = _headers_read(build, (build / "build.log").read_text())
    # the model unoptimized, cocotb's main for Verilator at Verilator's OPT_FAST (-Os), and the
    # runtime where this build compiled it
    assert used["Vtop__ALL.cpp"] == "O0.gch" and used["verilator.cpp"] == "Os.gch"
    assert "none" not in used.values()
    # VPI access to the top module's signals only (a model whose every signal is writable evaluates
    # all its logic after each write), from the config file in place of cocotb's --public-flat-rw
    verilated = (build / "Vtop__verFiles.dat").read_text().splitlines()[1]
    assert "--public-flat-rw" not in verilated and f"{build}/public.vlt" in verilated
    assert 'public_flat_rw -module "skid_buffer" -var "*"' in (build / "public.vlt").read_text()


def test_a_header_that_cannot_be_precompiled_is_tried_once(tmp_path, monkeypatch):
    calls = []
    real_run = subprocess.run

    def counting_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(build_cache.subprocess, "run", counting_run)
    for _ in range(2):  # a missing header: GCC fails, the build parses the headers itself
        assert build_cache.precompiled_header(tmp_path, "--std=c++20", tmp_path, ("no_such.h",)) is None
    assert len(calls) == 1
    # another header set is tried afresh
    (tmp_path / "ok.h").write_text("int answer();\n")
    assert build_cache.precompiled_header(tmp_path, "--std=c++20", tmp_path, ("ok.h",)) is not None
    assert len(calls) == 1 + len(build_cache.PCH_LEVELS)


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


def test_cocotb_rewrites_the_asserts_of_the_benches_only(tmp_path, monkeypatch):
    """cocotb's default rewrites every module a simulation imports (numpy compiled from source each
    time): the runner limits it to the benches and their stream helpers, unless the user chose."""
    from qnnflow.sim import runner

    def loaders() -> dict:
        run = runner.run_bench("skid_buffer", {"DATA_W": 13}, seed=1, cache_dir=tmp_path,
                               bench="tests.sim.tb_rewrite_probe")  # fmt: skip
        return run.report

    rewriter = "AssertionRewritingHook"
    monkeypatch.delenv(runner.REWRITE_ENV, raising=False)
    got = loaders()
    assert got["bench"] == got["streams"] == rewriter
    assert got["numpy"] != rewriter and got["kernels"] != rewriter
    monkeypatch.setenv(runner.REWRITE_ENV, "*.py")  # cocotb's own default, chosen by the user
    assert loaders()["numpy"] == rewriter
