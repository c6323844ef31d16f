"""The benchmark registry (``python -m qnnflow.bench``): what it lists and what every result holds.

Nothing here is timed: the benchmarks themselves run in ``make bench``, not in the test suite."""

from __future__ import annotations

import json

import pytest

from qnnflow import bench
from qnnflow.bench import registry


def test_registry_lists_every_benchmark(capsys) -> None:
    assert {"zoo-digits", "accel-sim", "compile", "implement"} <= set(bench.BENCHMARKS)
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    assert "compile" in capsys.readouterr().out


def test_result_holds_the_machine_and_the_benchmark_figures(tmp_path, monkeypatch) -> None:
    calls = []

    def tiny(args):
        calls.append(args.seed)
        return {"rows": [{"figure": 1}]}

    monkeypatch.setitem(bench.BENCHMARKS, "tiny", tiny)
    assert bench.main(["--only", "tiny", "--out", str(tmp_path), "--seed", "3"]) == 0
    assert calls == [3]
    doc = json.loads((tmp_path / "tiny.json").read_text())
    assert doc["benchmark"] == "tiny" and doc["rows"] == [{"figure": 1}] and doc["wall_seconds"] >= 0
    machine = doc["machine"]
    for key in ("platform", "cpu", "cores", "memory_gib", "load_average_1_5_15_min", "python", "packages"):
        assert key in machine, key
    assert machine["cores"] >= 1 and len(machine["load_average_1_5_15_min"]) == 3
    assert not (tmp_path / "compile.json").exists(), "--only ran another benchmark"


def test_timed_runs_the_function_each_time_and_gives_the_median() -> None:
    calls = []
    samples, median = registry.timed(lambda: calls.append(1), 3)
    assert len(calls) == 3 and len(samples) == 3
    assert median == sorted(samples)[1]


def test_benchmarks_read_the_repository_test_data(tmp_path, monkeypatch, capsys) -> None:
    from qnnflow.models.datasets import load_idx_test

    images, labels = load_idx_test(registry.repo_data("mnist"))
    assert images.shape == (10000, 28, 28) and labels[:3].tolist() == [7, 2, 1]
    assert registry.repo_data("third_party", "tfc_2w2a_qonnx.onnx").is_file()
    # installed as a wheel: no tests/ beside the package, and the benchmark says so instead of a traceback
    monkeypatch.setattr(registry, "_REPO", tmp_path)

    def reads_data(args):
        return {"path": str(registry.repo_data("mnist"))}

    monkeypatch.setitem(bench.BENCHMARKS, "reads-data", reads_data)
    assert bench.main(["--only", "reads-data", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    missing = tmp_path / "tests" / "data"
    expected = f"[reads-data] error: the benchmarks read the test data in a source checkout's tests/data, and {missing}"
    assert f"{expected} does not exist" in err
    assert "an installed wheel has no tests/" in err and "pip install -e ." in err
    assert not (tmp_path / "out" / "reads-data.json").exists()
