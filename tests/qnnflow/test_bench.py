"""The benchmark registry (``python -m qnnflow.bench``): what it lists and what every result holds.

Nothing here is timed: the benchmarks themselves run in ``make bench``, not in the test suite."""

from __future__ import annotations

import json

import pytest

from qnnflow import bench


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
    samples, median = bench.timed(lambda: calls.append(1), 3)
    assert len(calls) == 3 and len(samples) == 3
    assert median == sorted(samples)[1]
