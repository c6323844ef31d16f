"""The space file of qnnflow explore, the Pareto front, and the rows made from unit records (no Ray)."""

from __future__ import annotations

import itertools
import random

import pytest

from qnnflow.explore.pareto import front, parse_objective
from qnnflow.explore.results import make_row
from qnnflow.explore.space import DEFAULT_SPACE, SpaceError, load_space, parse_space


def _grid(**axes) -> dict:
    return {"explore": {"fidelity": "estimate"}, "grid": [{"topology": "digits-cnn", "cycles": 9216, **axes}]}


def test_default_space_covers_what_the_issue_names():
    space = load_space(DEFAULT_SPACE)
    pts = space.points
    assert len(pts) >= 12
    assert {p.precision for p in pts} >= {"w1a1", "wtat", "w2a2", "w3a3", "w4a4", "w8a4"}
    assert len({p.cycles for p in pts}) >= 2
    assert {p.board for p in pts} == {"ulx3s-85f", "icebreaker"}
    assert space.settings.fidelity == "implement"
    assert len({p.name for p in pts}) == len(pts)
    # ana crossed with the other precisions is left out, and said so
    assert any("ANA" in why for why in space.skipped)
    assert {p.method for p in pts if p.precision == "wtat"} == {"ste", "ana"}


def test_grid_is_the_product_and_grids_are_united():
    data = _grid(precision=["w1a1", "w2a2"], board=["ulx3s-85f", "icebreaker"], seed=[0, 1])
    data["grid"].append(
        {"topology": "digits-cnn", "precision": "w2a2", "cycles": 9216, "board": "icebreaker", "seed": 1}
    )  # fmt: skip  (already in the first grid)
    data["grid"].append({"topology": "tfc", "precision": "w1a1", "fps": 1000, "clock_mhz": 50})
    space = parse_space(data)
    assert len(space.points) == 2 * 2 * 2 + 1
    assert space.settings.folding_rule == "balanced"
    data["grid"].append({"topology": "tfc", "precision": "w1a1", "lut_budget": [3000]})
    space = parse_space(data)
    budget = [p for p in space.points if p.lut_budget is not None]
    assert [(p.folding, p.target_cycles(), p.fold()) for p in budget] == [("b3000", None, {"lut_budget": 3000})]
    tfc = [p for p in space.points if p.topology == "tfc" and p.fps is not None][0]
    assert tfc.target_cycles() == 50_000  # 50 MHz / 1,000 frames/s
    assert tfc.board == "ulx3s-85f" and tfc.method == "ste" and tfc.seed == 0


def test_untrainable_pairs_are_left_out():
    space = parse_space(_grid(precision=["w1a1", "wtat", "w2a2"], method=["ste", "ana", "stochastic-binary"]))
    got = {(p.precision, p.method) for p in space.points}
    assert got == {("w1a1", "ste"), ("wtat", "ste"), ("w2a2", "ste"), ("wtat", "ana"), ("w1a1", "stochastic-binary")}
    assert len(space.skipped) == 9 - len(got)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grid": [{"topology": "digits-cnn", "precision": "w2a2"}]}, "one of cycles (per frame), fps or lut_budget"),
        (_grid(precision="w2a2", lut_budget=3000), "not cycles and lut_budget"),
        ({"explore": {"folding_rule": "fast"}, "grid": [{}]}, "folding_rule must be one of"),
        (_grid(precision="w9a2"), "w<W>a<A>"),
        (_grid(precision="w2a2", board="zedboard"), "unknown board 'zedboard'"),
        (_grid(precision="w2a2", topology="resnet"), "unknown topology 'resnet'"),
        (_grid(precision="w2a2", method="adam"), "method 'adam'"),
        (_grid(precision="w2a2", cycles=-4), "cycles target -4"),
        (_grid(precision="w2a2", colour="red"), "unknown axes ['colour']"),
        (_grid(precision="w2a2", method="ana"), "every combination was left out"),
        ({"explore": {"fidelity": "bitstream"}, "grid": [{}]}, "fidelity must be one of"),
        ({"explore": {"objectives": ["accuracy:speed"]}, "grid": [{}]}, "unknown metric 'speed'"),
        ({"explore": {}, "grids": []}, "unknown tables ['grids']"),
        ({"explore": {}}, "no [[grid]] table"),
    ],
)
def test_bad_spaces_say_what_was_expected(data, message):
    with pytest.raises(SpaceError, match=None) as info:
        parse_space(data, "s.toml")
    assert message in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(SpaceError, match="space file not found"):
        load_space(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[explore\n")
    with pytest.raises(SpaceError, match="not valid TOML"):
        load_space(bad)


def _brute_front(rows, y, x, sy, sx):
    """Points no other point of the board beats on both metrics (the definition, by enumeration)."""
    out = set()
    for r in rows:
        beaten = any(
            o is not r and o["board"] == r["board"] and sy * o[y] >= sy * r[y] and sx * o[x] >= sx * r[x]
            and (sy * o[y] > sy * r[y] or sx * o[x] > sx * r[x])
            for o in rows
        )  # fmt: skip
        if not beaten:
            out.add(r["name"])
    return out


def test_pareto_front_equals_the_definition():
    rng = random.Random(7)
    for _ in range(30):
        rows = [{"name": f"p{k}", "board": rng.choice(["a", "b"]), "status": "ok",
                 "accuracy": rng.choice([0.8, 0.85, 0.9, 0.95]), "luts": rng.randrange(100, 120),
                 "jaccard": rng.random()} for k in range(12)]  # fmt: skip
        assert {r["name"] for r in front(rows, "accuracy", "luts")} == _brute_front(rows, "accuracy", "luts", 1, -1)
        assert {r["name"] for r in front(rows, "jaccard", "luts")} == _brute_front(rows, "jaccard", "luts", -1, -1)
    # failed points and points without the metric are never on a front
    rows = [{"name": "a", "board": "b", "status": "failed", "accuracy": 1.0, "luts": 1},
            {"name": "b", "board": "b", "status": "ok", "accuracy": 0.5, "luts": None},
            {"name": "c", "board": "b", "status": "ok", "accuracy": 0.5, "luts": 10}]  # fmt: skip
    assert [r["name"] for r in front(rows, "accuracy", "luts")] == ["c"]
    assert parse_objective("accuracy:fps_per_lut") == ("accuracy", "fps_per_lut")


def test_row_from_unit_records():
    space = parse_space(_grid(precision="w2a2", board="ulx3s-85f"))
    p = space.points[0]
    recs = {
        "train": {"metrics": {"test_accuracy": 0.9, "float_test_accuracy": 0.95, "flips": 3, "jaccard": 0.4}},
        "compile": {"metrics": {"estimates": {"ecp5": {"LUT4": 1100, "DP16KD": 4}}, "ii_estimated": 9216}},
        "sim": {"metrics": {"hw_accuracy": 0.9, "frames": 360, "mismatches": 0, "cycles_measured": 9216}},
        "implement": {"metrics": {"utilization": {"TRELLIS_COMB": {"used": 1000}, "TRELLIS_FF": {"used": 700},
                                                  "DP16KD": {"used": 5}}, "fmax_mhz": 92.16, "timing_met": False}},
    }  # fmt: skip
    row, _ = make_row(p, "ecp5", recs, "implement")
    assert (row["luts"], row["ffs"], row["brams"], row["dsps"]) == (1000, 700, 5, 0)
    assert row["fps"] == pytest.approx(92.16e6 / 9216)
    assert row["fps_per_lut"] == pytest.approx(10.0)
    assert row["lut_est_error_pct"] == pytest.approx(10.0)
    recs["implement"]["error"] = "FlowError: does not fit"
    row, _ = make_row(p, "ecp5", recs, "implement")
    assert row["status"] == "does-not-fit"
    assert list(itertools.islice(row, 3)) == ["name", "topology", "precision"]


class _FakeSweep:
    """The engine's interface with made-up metrics: accuracy grows with the weight width, LUTs with
    width and parallelism (a known front)."""

    def __init__(self, space):
        self.space, self.computed = space, []

    def run(self, points):
        self.computed += [p.name for p in points]
        rows = []
        for p in points:
            w = {"w1a1": 1, "w2a2": 2, "w3a3": 3, "w4a4": 4, "w8a8": 8}[p.precision]
            rows.append({"name": p.name, "board": p.board, "status": "ok", "accuracy": 1 - 0.5**w,
                         "luts": 100 * w * (36864 // p.cycles)})  # fmt: skip
        return rows


def test_nsga2_search_tries_points_of_the_space_and_finds_its_front():
    from qnnflow.explore.search import nsga2

    data = _grid(precision=["w1a1", "w2a2", "w3a3", "w4a4", "w8a8"], cycles=[9216, 36864], seed=[0, 1])
    data["explore"]["objectives"] = ["accuracy:luts"]
    space = parse_space(data)
    sweep = _FakeSweep(space)
    rows = nsga2(sweep, trials=40, population=6, seed=3, say=lambda s: None)
    names = {p.name for p in space.points}
    assert set(sweep.computed) <= names and len(rows) == len(set(sweep.computed))
    all_rows = _FakeSweep(space).run(space.points)
    true_front = {(r["accuracy"], r["luts"]) for r in front(all_rows, "accuracy", "luts")}
    found = {(r["accuracy"], r["luts"]) for r in front(rows, "accuracy", "luts")}
    assert found == true_front
    assert len(rows) < len(space.points)  # it did not just sweep everything
    with pytest.raises(ValueError, match="population of 2"):
        nsga2(sweep, trials=4, population=1)


def test_per_layer_widths_in_a_space():
    space = parse_space(_grid(precision=["w4.3.2a4.3", "w2a2"], method=["ste", "ana"]))
    mixed = [p for p in space.points if p.precision == "w4.3.2a4.3"]
    assert [(p.method, p.preset, p.layer_bits) for p in mixed] == [("ste", "digits-cnn-w8a8", "w4.3.2a4.3")]
    assert [p.layer_bits for p in space.points if p.precision == "w2a2"] == [None]
    with pytest.raises(SpaceError, match="3 weight layers and 2 activations, not 2 and 2"):
        parse_space(_grid(precision="w4.3a4.3"))
    with pytest.raises(SpaceError, match="per-layer widths of 2..8 bits"):
        parse_space(_grid(precision="w4.1.2a4.3"))


def test_a_unit_keeps_qnnflow_refusals_as_results_and_lets_bugs_through(tmp_path):
    """A ValueError that qnnflow raises (bad settings, an unreachable target) is the unit's result and is
    not computed again; the same type raised by Python or a library is a bug: raised, nothing recorded."""
    from qnnflow.config import BuildConfig
    from qnnflow.explore.units import run_unit

    calls = []

    def refused(folder):
        calls.append(folder)
        BuildConfig(epochs=0)

    rec = run_unit(tmp_path, "train", {"case": 1}, refused)
    assert rec["error"].startswith("ValueError: epochs must be at least 1") and not rec["cached"]
    again = run_unit(tmp_path, "train", {"case": 1}, refused)
    assert again["cached"] and again["error"] == rec["error"] and len(calls) == 1
    with pytest.raises(ValueError, match="invalid literal"):
        run_unit(tmp_path, "train", {"case": 2}, lambda folder: {"n": int("x")})
    assert len(list((tmp_path / "units" / "train").glob("*/record.json"))) == 1  # only case 1 recorded


def test_an_address_where_no_ray_answers_is_refused_before_anything_is_written(tmp_path, capsys):
    import socket

    from qnnflow.cli import main

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    space = tmp_path / "s.toml"
    space.write_text('[explore]\nfidelity = "estimate"\n[[grid]]\ntopology = "digits-cnn"\nprecision = "w2a2"\n'
                     "cycles = 9216\n")  # fmt: skip
    assert main(["explore", str(space), "--out", str(tmp_path / "out"), "--address", f"127.0.0.1:{port}"]) == 2
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
