"""What a new user meets first: results that never outlive the run that made them, reruns that
redo nothing, one exit status per kind of failure, a doctor that finds what the machine lacks, the
default folding, the data set option, inputs scaled wrongly, and a reproducible training run.

One digits-CNN build (two epochs, up to the sim stage) is shared by the tests of this module; the
bitstream-stage cases (a failed implementation rewrites the report) are in test_build_e2e.py.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from qnnflow import errors
from qnnflow.cli import main

pytest.importorskip("torch")


# no cells through cocotb (a cocotb build of the accelerator): tests/qnnflow/test_hwmap.py runs them
MAP = ["--hw-map", "16", "--hw-map-stalls", "0"]


# one xdist worker for the module (make test: --dist loadgroup): the shared build is made once
pytestmark = pytest.mark.xdist_group("first-hour")


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("first-hour") / "digits"
    # a small decision map (the default 128 x 128 takes minutes): the stage runs it like a user's build
    assert main(["build", "--out", str(out), "--epochs", "2", "--until", "sim", *MAP]) == 0
    return out


def _copy(build: Path, tmp_path: Path) -> Path:
    """A copy of the shared build for a test that changes it (tests of this module may run in any
    order, on any xdist worker)."""
    import shutil

    return Path(shutil.copytree(build, tmp_path / "copy", symlinks=True))


def _random_digits(tmp_path: Path) -> Path:
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    preset = parse_preset("digits-cnn-w2a2")
    return export_qonnx(random_model(preset), tmp_path / "m.onnx", preset.input_shape)


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.rtl
def test_the_build_maps_the_hardwares_decisions(build):
    m = json.loads((build / "sim" / "boundary" / "map.json").read_text())
    assert m["cells"] == 16 * 16 and m["hw_vs_software"]["slice_flip_cells"] == 0
    assert m["hw_vs_float"] is not None and "stalled_subsample" not in m  # --hw-map-stalls 0 reached the stage
    assert (build / "sim" / "boundary" / "map.png").stat().st_size > 10_000


@pytest.mark.rtl
def test_an_unchanged_rerun_redoes_nothing(build, capsys):
    capsys.readouterr()
    kept = {k: v for k, v in _mtimes(build).items() if not k.startswith(("sim/verilator", ".stamps"))}
    assert main(["build", "--out", str(build), "--epochs", "2", "--until", "sim", *MAP]) == 0
    out = capsys.readouterr().out
    assert "trained model is up to date" in out
    assert "compiled dataflow graph is up to date" in out
    assert "simulation results are up to date" in out and "boundary check is up to date" in out
    assert "hardware decision map is up to date" in out
    now = _mtimes(build)
    changed = [k for k, t in kept.items() if now.get(k) != t and k != "config.toml"]
    assert changed == [], f"an unchanged rerun rewrote {changed[:5]}"


@pytest.mark.rtl
def test_other_simulations_never_replace_the_builds_record(build, tmp_path):
    record = json.loads((build / "sim" / "results.json").read_text())
    assert record["frames"] == 360 and record["mode"] == "batch"
    x = np.load(build / "test_inputs.npy")[:4]
    np.save(tmp_path / "four.npy", x)
    runs_dir = build / "sim" / "runs"
    earlier = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()  # the decision map's own runs
    assert main(["sim", str(build), "--inputs", str(tmp_path / "four.npy"), "--boundary-probes", "0"]) == 0
    assert main(["sim", str(build), "--mode", "cocotb", "--frames", "2"]) == 0
    assert main(["sim", str(build), "--stalls", "--frames", "3", "--boundary-probes", "0"]) == 0
    assert json.loads((build / "sim" / "results.json").read_text()) == record  # untouched
    runs = {p.name: json.loads((p / "results.json").read_text())
            for p in (build / "sim" / "runs").iterdir() if p.name not in earlier}  # fmt: skip
    assert sorted(r["frames"] for r in runs.values()) == [2, 3, 4]
    assert {r["mode"] for r in runs.values()} == {"batch", "cocotb"}
    stalled = next(r for r in runs.values() if r["frames"] == 3)
    assert stalled["stalls"], "the --stalls run recorded no stalls"
    assert all(r["mismatches"] == 0 for r in runs.values())


@pytest.mark.rtl
def test_a_hardware_mismatch_exits_1(build, tmp_path, capsys):
    """Corrupt one MVAU's weights in rtl/ (code generation's output, which the sim reuses): the
    hardware must then disagree with the dataflow graph, and the exit status says so."""
    build = _copy(build, tmp_path)
    mem = max((build / "rtl").glob("*_weights.mem"), key=lambda p: p.stat().st_size)
    mem.write_text("".join("0" if c in "0123456789abcdefABCDEF" else c for c in mem.read_text()))
    x = np.load(build / "test_inputs.npy")[:40]
    np.save(tmp_path / "forty.npy", x)
    code = main(["sim", str(build), "--inputs", str(tmp_path / "forty.npy"), "--boundary-probes", "0"])
    assert code == errors.EXIT_MISMATCH


@pytest.mark.rtl
def test_a_failed_recompile_leaves_no_result_that_looks_like_its_own(build, tmp_path, capsys):
    build = _copy(build, tmp_path)
    before = json.loads((build / "estimates.json").read_text())["ii_cycles"]
    assert before <= 10_000
    code = main(["compile", str(build / "model.onnx"), "--out", str(build), "--target-cycles", "1"])
    assert code == errors.EXIT_BAD_INPUT
    assert "not reachable" in capsys.readouterr().err
    for name in ("dataflow.onnx", "folding.json", "estimates.json", "verification.json", "steps",
                 "rtl", "sim/results.json", "sim/boundary", "sim/runs"):
        assert not (build / name).exists(), f"{name} of an earlier run survived a failed compile"
    assert not any(p.name.endswith(".partial") for p in build.iterdir())
    assert (build / "model.onnx").is_file() and (build / "metrics.json").is_file()  # the train stage's stay


def test_compile_without_a_target_folds_for_the_builds_default(tmp_path, capsys):
    model = _random_digits(tmp_path)
    assert main(["compile", str(model), "--out", str(tmp_path / "c")]) == 0
    assert "no folding target given: folding for 10,000 cycles per frame" in capsys.readouterr().out
    est = json.loads((tmp_path / "c" / "estimates.json").read_text())
    assert est["ii_cycles"] <= 10_000  # PE = SIMD = 1 everywhere would be 294,912


def test_inputs_outside_the_models_grid_are_warned_about(tmp_path, capsys):
    model = _random_digits(tmp_path)
    raw = np.random.default_rng(0).integers(0, 17, size=(8, 1, 8, 8)).astype(np.float32)  # 0..16 pixels
    np.save(tmp_path / "raw.npy", raw)
    assert main(["compile", str(model), "--out", str(tmp_path / "c"), "--inputs", str(tmp_path / "raw.npy")]) == 0
    out = capsys.readouterr().out
    assert "values span [0, 16]" in out and "quantizes its input to [0, 1.9375]" in out
    np.save(tmp_path / "ok.npy", raw / 16)
    assert main(["compile", str(model), "--out", str(tmp_path / "c"), "--inputs", str(tmp_path / "ok.npy")]) == 0
    assert "values span" not in capsys.readouterr().out


def test_a_file_that_is_not_an_array_is_named(tmp_path, capsys):
    model = _random_digits(tmp_path)
    (tmp_path / "x.npy").write_text("0,1,2\n")
    assert main(["compile", str(model), "--out", str(tmp_path / "c"), "--inputs", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'x.npy'} is not a .npy array" in err and "Traceback" not in err


def test_an_internal_error_says_it_is_a_bug_and_where(tmp_path, capsys, monkeypatch):
    from qnnflow.flows.compile import driver as compile_mod
    model = _random_digits(tmp_path)

    def broken(*_args, **_kwargs):
        return {}["no such key"]

    monkeypatch.setattr(compile_mod, "_compile", broken)
    assert main(["compile", str(model), "--out", str(tmp_path / "c"), "--target-cycles", "10000"]) == 4
    err = capsys.readouterr().err
    assert "internal error (a bug in qnnflow" in err and "KeyError" in err
    log = Path(err.split("traceback: ")[1].strip())
    assert "no such key" in log.read_text() and "Traceback" in log.read_text()
    assert not (tmp_path / "c" / "dataflow.onnx").exists()


def _path_without(tmp_path: Path, program: str) -> str:
    """A PATH of links to what the flow runs, less ``program``."""
    folder = tmp_path / f"bin-without-{program}"
    folder.mkdir()
    import shutil

    for name in ("c++", "ar", "make", "perl", "python", "sh", "cc", "gcc", "g++", "as", "ld"):
        found = shutil.which(name)
        if found and name != program and not (program == "c++" and name in ("g++", "gcc", "cc")):
            (folder / name).symlink_to(found)
    return str(folder)


def test_doctor_and_the_sim_stage_name_a_missing_cpp_compiler(build, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", _path_without(tmp_path, "c++"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("c++"))
    assert "MISSING" in line and "apt-get install g++" in line
    assert "all tools found" not in out
    code = main(["sim", str(build), "--frames", "2", "--mode", "batch", "--boundary-probes", "0"])
    assert code == errors.EXIT_TOOL
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "c++ not found on PATH" in err


def test_dataset_option_trains_on_another_data_set(tmp_path, capsys):
    """--dataset fashion-mnist with IDX files made here (5,010 training images: 10 to train, 5,000
    to calibrate): the build records and uses that data set; a data set of another input size is
    refused with the shapes named."""

    def write_idx(path: Path, array: np.ndarray) -> None:
        header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())

    rng = np.random.default_rng(0)
    data = tmp_path / "fashion"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5010, 28, 28)))
    write_idx(data / "train-labels-idx1-ubyte.gz", np.arange(5010) % 10)
    write_idx(data / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", np.arange(20) % 10)
    out = tmp_path / "tfc"
    args = ["train", "--preset", "tfc-w1a1", "--epochs", "1", "--dataset", "fashion-mnist", "--data-dir", str(data)]
    assert main([*args, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion-mnist"
    assert metrics["split"] == {"train": 10, "calibration": 5000, "test": 20}
    assert np.load(out / "test_labels.npy").tolist() == (np.arange(20) % 10).tolist()
    assert not (out / "model.onnx.data").exists()  # the export is one self-contained file

    assert main(["train", "--preset", "digits-cnn-w2a2", "--dataset", "fashion-mnist", "--data-dir", str(data),
                 "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "takes inputs of shape (1, 8, 8), but data set fashion-mnist has (1, 28, 28)" in err


def test_training_is_reproducible():
    import torch
    from qnnflow.models.datasets import load_dataset
    from qnnflow.models.train import train_model
    from qnnflow.models.zoo import parse_preset

    preset, split = parse_preset("digits-cnn-w2a2"), load_dataset("digits")
    a, b = (train_model(preset, split, 2, seed=0, log=None) for _ in range(2))
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train_model(preset, split, 2, seed=1, log=None)
    assert not all(torch.equal(sa[k], c.model.state_dict()[k]) for k in sa)  # the seed matters


def test_tool_phase_reads_yosys_and_nextpnr_logs(tmp_path):
    from qnnflow.flows.implement import tool_phase

    yosys = tmp_path / "yosys.log"
    yosys.write_text("2.3. Executing PROC pass.\n...\n2.47. Executing ABC pass (technology mapping).\nABC: x\n")
    assert tool_phase(yosys) == "ABC pass (technology mapping)"
    pnr = tmp_path / "nextpnr.log"
    pnr.write_text("Info: Packing IOs..\nInfo: Running placement..\nInfo: Routing..\nInfo: iter 1\n")
    assert tool_phase(pnr) == "routing"
    assert tool_phase(tmp_path / "missing.log") is None


def test_version_and_help_list_what_a_newcomer_needs(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    from qnnflow import __version__

    assert capsys.readouterr().out.strip() == f"qnnflow {__version__}"
    import subprocess

    help_text = subprocess.run(["make", "-s", "help"], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                               text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=60).stdout
    assert "make test-all" in help_text


@pytest.mark.rtl
def test_a_compiled_third_party_style_folder_simulates_its_own_test_set(tmp_path):
    """`qnnflow compile M --inputs X --labels y` outside a train folder keeps X / y as the build's
    test set: `qnnflow sim` then runs them by default and writes the build's record."""
    model = _random_digits(tmp_path)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 17, size=(12, 1, 8, 8)).astype(np.float32) / 16
    y = rng.integers(0, 10, size=12)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "b"
    args = ["compile", str(model), "--out", str(out), "--inputs", str(tmp_path / "x.npy"), "--labels"]
    assert main([*args, str(tmp_path / "y.npy"), "--target-cycles", "20000"]) == 0
    np.testing.assert_array_equal(np.load(out / "test_inputs.npy"), x)
    assert main(["sim", str(out), "--boundary-probes", "0"]) == 0
    record = json.loads((out / "sim" / "results.json").read_text())
    assert record["frames"] == 12 and record["mismatches"] == 0 and record["hw_accuracy"] is not None


def test_a_python_error_inside_qnnflow_is_internal_not_bad_input(tmp_path, capsys, monkeypatch):
    """A TypeError that Python raises in qnnflow's own code (a bug) must not pass for a message."""
    from qnnflow.flows.compile import driver as compile_mod

    model = _random_digits(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), np.float32))
    # a builtin in place of a helper: Python raises the TypeError in compile.py's own frame
    monkeypatch.setattr(compile_mod, "range_warning", int)
    args = ["compile", str(model), "--out", str(tmp_path / "c"), "--inputs", str(tmp_path / "x.npy")]
    assert main(args) == 4
    err = capsys.readouterr().err
    assert "internal error" in err and "TypeError" in err and "flows/compile/driver.py" in err


@pytest.mark.rtl
def test_sim_with_one_input_skips_the_boundary_probes_with_a_note(build, tmp_path, capsys):
    np.save(tmp_path / "one.npy", np.load(build / "test_inputs.npy")[:1])
    assert main(["sim", str(build), "--inputs", str(tmp_path / "one.npy")]) == 0
    out = capsys.readouterr().out
    assert "boundary probes skipped: 1 input: two inputs of different classes are needed" in out


@pytest.mark.rtl
def test_a_changed_word_layout_regenerates_the_rtl(build, tmp_path, monkeypatch):
    """rtl/ is reused only while the code that made it is unchanged: here the package source is a
    copy whose memory-file word layout (flows/codegen/memfiles.py) is edited, and the next simulation must
    generate rtl/ again (and drop the results made from the old one)."""
    import shutil

    from qnnflow.sim.stitch import prepare_rtl

    from qnnflow import stamps

    build = _copy(build, tmp_path)
    src = tmp_path / "src"
    for layer in ("qnnflow", "flows", "sim", "hw"):
        shutil.copytree(stamps._PACKAGE / layer, src / layer, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(stamps, "_PACKAGE", src)
    before = stamps.rtl_digest(build)
    logs: list[str] = []
    prepare_rtl(build, log=logs.append)
    assert stamps.rtl_digest(build) == before and not any("code generation" in m for m in logs)  # same source
    memfiles = src / "flows" / "codegen" / "memfiles.py"
    memfiles.write_text(memfiles.read_text() + "\n# word layout changed: most significant element first\n")
    prepare_rtl(build, log=logs.append)
    assert any("code generation" in m for m in logs), "a changed memfiles.py reused the old rtl/"
    assert stamps.rtl_digest(build) != before
    assert not (build / "sim" / "results.json").exists()  # made from the old RTL: removed
