"""--clock-mhz auto: the search over PLL steps (with a stand-in for place and route) and its input."""

from __future__ import annotations

import pytest
from qnnflow.flows.implement import autoclock
from qnnflow.flows.implement.boards import board_spec, clock_settings
from qnnflow.flows.implement.pnr import ImplResult

from qnnflow.errors import FlowError


def _fake_pnr(fmax_of, calls):
    """implement() stand-in: the Fmax a placement for `want` MHz reaches is fmax_of(clock)."""

    def implement(build_dir, board, want, **kwargs):
        spec = board_spec(board)
        clock = clock_settings(spec, want).mhz
        calls.append(clock)
        fmax = fmax_of(clock)
        return ImplResult(
            board=spec.name, part=spec.part, family=spec.family, requested_mhz=want, clock_mhz=clock, baud=115200,
            bitstream="x.bit" if fmax >= clock else None, fmax={"clk": {"achieved": fmax, "constraint": clock}},
            timing_met=fmax >= clock, utilization={}, yosys_cells={}, seconds={}, logs={}, link_format={},
        )  # fmt: skip

    return implement


@pytest.mark.parametrize(
    ("fmax_of", "want"),
    [
        (lambda f: 141.3, 137.5),  # misses 150, closes at the PLL step at or below 0.98 * 141.3
        (lambda f: 180.0, 175.0),  # closes at 150, climbs to the step at or below 0.98 * 180
        # 150 misses (Fmax 140); the step at or below 137.2, 950/7 MHz, closes with Fmax 160; the step
        # up (156.25) misses; back to 950/7, placed again
        (lambda f: 160.0 if f < 150 else 140.0, 950 / 7),
    ],
)
def test_auto_clock_keeps_the_highest_pll_step_that_closes(tmp_path, monkeypatch, fmax_of, want):
    calls: list[float] = []
    monkeypatch.setattr(autoclock, "implement", _fake_pnr(fmax_of, calls))
    monkeypatch.setattr(ImplResult, "write", lambda self, path: path)
    result = autoclock.implement_auto(tmp_path, "ulx3s-85f", progress=None)
    assert result.timing_met
    # every clock placed that closed is at most the one kept, and the kept one is a PLL output
    assert result.clock_mhz == max(c for c in calls if fmax_of(c) >= c)
    assert result.clock_mhz == pytest.approx(want)
    assert [t["clock_mhz"] for t in result.clock_search] == calls
    assert len(calls) <= 1 + autoclock.TRIES + 1


def test_a_near_miss_is_placed_again_with_the_next_seeds(tmp_path, monkeypatch):
    """Seed 1 misses 150 MHz by 1 % and seed 2 by 3 %; seed 3 closes: kept at 150 with seed 3. A
    miss by more than NEAR is not retried (the next clock is tried instead)."""
    runs: list[tuple[float, int]] = []
    fmax_by_seed = {1: 148.5, 2: 145.5, 3: 151.0}

    def implement(build_dir, board, want, seed=1, **kwargs):
        spec = board_spec(board)
        clock = clock_settings(spec, want).mhz
        runs.append((clock, seed))
        fmax = fmax_by_seed[seed] if clock == 150.0 else 120.0
        return ImplResult(
            board=spec.name, part=spec.part, family=spec.family, requested_mhz=want, clock_mhz=clock, baud=115200,
            bitstream="x.bit" if fmax >= clock else None, fmax={"clk": {"achieved": fmax, "constraint": clock}},
            timing_met=fmax >= clock, utilization={}, yosys_cells={}, seconds={}, logs={}, link_format={},
            seed=seed,
        )  # fmt: skip

    monkeypatch.setattr(autoclock, "implement", implement)
    monkeypatch.setattr(ImplResult, "write", lambda self, path: path)
    result = autoclock.implement_auto(tmp_path, "ulx3s-85f", progress=None)
    assert result.timing_met and result.clock_mhz == 150.0
    assert runs == [(150.0, 1), (150.0, 2), (150.0, 3)]
    assert [(t["clock_mhz"], t["seed"], t["met"]) for t in result.clock_search] == [
        (150.0, 1, False), (150.0, 2, False), (150.0, 3, True)
    ]  # fmt: skip
    # far from the clock (120 of 150 MHz): one seed, then the next clock
    runs.clear()
    fmax_by_seed.update({1: 120.0, 2: 160.0, 3: 160.0})
    autoclock.implement_auto(tmp_path, "ulx3s-85f", progress=None)
    assert runs[:2] == [(150.0, 1), (runs[1][0], 1)] and runs[1][0] < 150.0


def test_auto_clock_says_when_nothing_closes(tmp_path, monkeypatch):
    calls: list[float] = []
    monkeypatch.setattr(autoclock, "implement", _fake_pnr(lambda f: f * 0.9, calls))
    monkeypatch.setattr(ImplResult, "write", lambda self, path: path)
    with pytest.raises(FlowError, match="no clock closed"):
        autoclock.implement_auto(tmp_path, "ulx3s-85f", progress=None)
    assert len(calls) == 1 + autoclock.TRIES


def test_pll_at_most_never_exceeds_the_limit():
    spec = board_spec("ulx3s-85f")
    for limit in (99.9, 137.4, 141.3, 150.0):
        got = clock_settings(spec, autoclock.pll_at_most(spec, limit)).mhz
        assert got <= limit
    assert clock_settings(spec, autoclock.pll_at_most(spec, 150.0)).mhz == 150.0


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), ("AUTO", "auto"), ("62.5", 62.5)])
def test_parse_clock(text, value):
    assert autoclock.parse_clock(text) == value


@pytest.mark.parametrize("text", ["fast", "0", "-5"])
def test_parse_clock_refuses_what_is_not_a_clock(text):
    with pytest.raises(ValueError, match="--clock-mhz"):
        autoclock.parse_clock(text)
