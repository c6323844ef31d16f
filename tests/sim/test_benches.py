"""Runs the cocotb bench of every RTL module over its parameter sets (qnnflow.sim.cases).

Each case is one Verilator build (cached under build/sim_cache) and one simulation with three
traffic modes: no stalls, random input idles, random output backpressure. The bench checks the
outputs bit for bit against qnnflow.flows.ir.kernels and, without stalls, the cycles per frame
against the module's formula. A failure names the seed; rerun one case with waves with
`python -m qnnflow.sim.runner <module>/<case> --waves`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qnnflow.sim import cases
from qnnflow.sim.runner import run_bench

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "sim_cache"


def _params():
    # the representative cases (slow) are the configurations of the closing figures
    for case in cases.all_cases() + cases.representative_cases():
        marks = [pytest.mark.rtl] + ([pytest.mark.slow] if case.slow else [])
        yield pytest.param(case, id=case.full_id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_bench(case: cases.Case) -> None:
    run = case.run(cache_dir=CACHE)
    assert run.tests == 3 and run.failures == 0
    # the frame period without stalls was checked by the bench; it must have been measured
    assert "cycles_per_frame" in run.report, f"{case.full_id}: no cycle measurement in {run.run_dir}"


@pytest.mark.rtl
def test_bench_catches_a_wrong_weight(tmp_path):
    """The scoreboard is not vacuous: one flipped weight bit in the memory file must fail the bench."""
    case = cases.by_id("mvau/pe4-simd8-wternary-a4u")  # no thresholds: every change shows
    extra, files = case.prepare(case.seed)
    words = files["weights.mem"].split()
    words[3] = f"{int(words[3], 16) ^ 0x1:0{len(words[3])}x}"
    files["weights.mem"] = "\n".join(words) + "\n"
    run = run_bench(
        case.module,
        case.params,
        seed=case.seed,
        config={**case.config, **extra},
        files=files,
        cache_dir=CACHE,
        check=False,
    )
    assert run.tests == 3 and run.failures == 3


@pytest.mark.rtl
def test_tv_bench_catches_a_wrong_table_entry():
    """The TV scoreboard is not vacuous: T[span, 0] (read by the first frame, a checkerboard, at the
    map's last row and column) set to 0 in the table file fails all three traffic modes."""
    case = cases.by_id("tv_smooth/pe2-ch4-u4-4x4-g1")
    extra, files = case.prepare(case.seed)
    words = files["tv_table.mem"].split()
    span = case.params["HI"] - case.params["LO"]
    addr = span * (span + 1)  # T[span, 0]
    assert int(words[addr], 16) > 32
    words[addr] = "0" * len(words[addr])
    files["tv_table.mem"] = "\n".join(words) + "\n"
    config = {**case.config, **extra}
    run = run_bench(case.module, case.params, seed=case.seed, config=config, files=files, cache_dir=CACHE, check=False)
    assert run.tests == 3 and run.failures == 3


# ------------------------------------------------------------------------------------------------
# overflow: expected values are range-checked, corner vectors reach the extremes
# ------------------------------------------------------------------------------------------------
def test_expected_values_are_range_checked_not_wrapped():
    from qnnflow.sim.streams import beats

    assert beats([3, -4, 0, 1], 3, 2, signed=True) == [0b100_011, 0b001_000]  # element 0 in the LSBs
    assert beats([7, 0], 3, 1, signed=False) == [7, 0]
    assert beats([-1, 1], 1, 2, signed=True, bipolar=True) == [0b10]
    with pytest.raises(ValueError) as err:
        beats([1, 2, 8, -9], 4, 2, signed=True, port="expected output (OUT_W 4)")
    assert str(err.value).startswith(
        "expected output (OUT_W 4): 2 of 4 values do not fit 4-bit signed [-8, 7], the first element 2 (beat 1) = 8, "
        "all in [-9, 8]: the port (or the accumulator behind it) is too narrow for this case"
    )
    with pytest.raises(ValueError, match=r"^input: 1 of 2 values do not fit 2-bit unsigned \[0, 3\], the first "):
        beats([-1, 0], 2, 1, signed=False, port="input")
    with pytest.raises(ValueError, match=r"do not fit bipolar \(-1 or \+1\)"):
        beats([1, 0], 1, 2, signed=True, bipolar=True)


def _mvau_cases() -> list[cases.Case]:
    return [c for c in cases.all_cases() + cases.representative_cases() if c.module == "mvau"]


@pytest.mark.parametrize("case", _mvau_cases(), ids=lambda c: c.full_id)
def test_mvau_corner_vectors_reach_both_accumulator_extremes(case):
    """The corner vectors against the corner weight rows give exactly the accumulator range that
    ACC_W is derived from (numpy reference), and the corner rows have thresholds at their extremes."""
    from qnnflow.flows.ir import kernels

    p = case.params
    extra, _files = case.prepare(case.seed)
    w = np.array(extra["weights"])
    bipolar = bool(p["IN_BIPOLAR"]), bool(p["W_BIPOLAR"])
    lo, hi = kernels.accumulator_range(p["MW"], tuple(extra["x_range"]), tuple(extra["w_range"]), xnor=all(bipolar))
    acc = kernels.mvau(cases.corner_inputs(p["MW"], extra["x_range"]), w, x_bipolar=bipolar[0], w_bipolar=bipolar[1])
    assert acc[:, :2].min() == lo and acc[:, :2].max() == hi
    assert kernels.value_range(p["ACC_W"], True)[0] <= lo and hi + 1 <= kernels.value_range(p["ACC_W"], True)[1]
    if p["NUM_T"]:
        thr = np.array(extra["thresholds"])
        assert thr[0, -1] == acc[:, 0].max() and thr[1, -1] == acc[:, 1].max()


def _narrowed(case_id: str, **overrides) -> cases.Case:
    """A table case rebuilt with ``overrides`` (e.g. an accumulator one bit narrower)."""
    case = cases.by_id(case_id)
    p = case.params
    ternary = not p["W_BIPOLAR"] and case.prepare(case.seed)[0]["w_range"] == [-1, 1]
    kw = dict(
        mw=p["MW"], mh=p["MH"], pe=p["PE"], simd=p["SIMD"], in_w=p["IN_W"], in_signed=bool(p["IN_SIGNED"]),
        in_bipolar=bool(p["IN_BIPOLAR"]), w_w=p["W_W"], w_signed=bool(p["W_SIGNED"]), w_bipolar=bool(p["W_BIPOLAR"]),
        ternary=ternary, num_t=p["NUM_T"], out_offset=p["OUT_OFFSET"],
    )  # fmt: skip
    return cases.mvau_case(case.id + "-narrowed", **{**kw, **overrides})


@pytest.mark.rtl
def test_accumulator_one_bit_too_narrow_fails_the_bench():
    """ACC_W one less than derived: with thresholds the wrapped accumulator changes the outputs of
    the corner vectors (a mismatch in simulation); without, the expected accumulator does not fit
    OUT_W = ACC_W and the bench says so before comparing anything."""
    thr = _narrowed("mvau/pe8-simd16-w1a1-xnor", acc_w=cases.by_id("mvau/pe8-simd16-w1a1-xnor").params["ACC_W"] - 1)
    run = thr.run(cache_dir=CACHE, check=False)
    log = run.log.read_text()
    assert run.tests == 3 and run.failures == 3, log[-3000:]
    assert "mismatching beats" in log and "do not fit" not in log

    full = cases.by_id("mvau/pe2-simd2-w8a8s")  # signed 8-bit: the extreme is (-128) * (-128) * MW
    acc = _narrowed(full.full_id, acc_w=full.params["ACC_W"] - 1)
    run = acc.run(cache_dir=CACHE, check=False)
    log = run.log.read_text()
    assert run.tests == 3 and run.failures == 3, log[-3000:]
    w = acc.params["ACC_W"]
    assert f"expected output (OUT_W {w}, ACC_W {w}): " in log and f"do not fit {w}-bit signed" in log
    assert "= 131072" in log  # all-min inputs (-128) times the all-min weight row (-128), 8 columns


@pytest.mark.rtl
@pytest.mark.parametrize("case_id", ["thresholding/pe2-ch8-a8s-t15-off", "mvau/pe2-simd4-w2a2-thr"])
def test_bench_catches_a_changed_threshold(case_id):
    """Channel 0's top threshold sits at the highest value the corner vectors reach; raised by one
    in the memory file only (the reference keeps the case's), the all-max vector must mismatch."""
    from qnnflow.flows.codegen import memfiles

    case = cases.by_id(case_id)
    p = case.params
    extra, files = case.prepare(case.seed)
    width = p.get("THR_W", p.get("ACC_W"))
    rows = p.get("CH", p.get("MH"))
    thr = np.array(extra["thresholds"])
    words = [int(t, 16) for t in files["thresholds.mem"].split()]
    np.testing.assert_array_equal(memfiles.thresholds_from_words(words, rows, p["NUM_T"], p["PE"], width), thr)
    changed = thr.copy()
    changed[0, -1] += 1
    text = memfiles.threshold_words(changed, p["PE"], width)
    files["thresholds.mem"] = "".join(f"{w:0{-(-p['PE'] * p['NUM_T'] * width // 4)}x}\n" for w in text)
    config = {**case.config, **extra}
    run = run_bench(case.module, case.params, seed=case.seed, config=config, files=files, cache_dir=CACHE, check=False)
    assert run.tests == 3 and run.failures == 3
    assert "mismatching beats" in run.log.read_text()


@pytest.mark.rtl
@pytest.mark.parametrize(
    "case_id",
    [
        "thresholding/pe2-ch8-a8s-t255-search",
        pytest.param("mvau/pe2-simd4-w2a8s-thr255-search", marks=pytest.mark.slow),
    ],
)
def test_search_bench_catches_a_changed_threshold(case_id):
    """The same with the binary search (hw/threshold_search.sv): the case's per-stage files read back
    are its thresholds; channel 0's top threshold raised by one in those files only, the all-max
    vector must mismatch in every traffic mode."""
    from qnnflow.flows.codegen import memfiles

    case = cases.by_id(case_id)
    p = case.params
    extra, files = case.prepare(case.seed)
    width, rows = p.get("THR_W", p.get("ACC_W")), p.get("CH", p.get("MH"))
    thr = np.array(extra["thresholds"])
    words = {n: [int(w, 16) for w in t.split()] for n, t in files.items() if n.startswith(cases.SEARCH_PREFIX)}
    mem = memfiles.search_memories_from_files(words, cases.SEARCH_PREFIX, rows, p["NUM_T"], p["PE"], width)
    np.testing.assert_array_equal(memfiles.thresholds_from_search_words(mem, rows, p["NUM_T"], p["PE"], width), thr)
    changed = thr.copy()
    changed[0, -1] += 1
    files.update(cases.threshold_files(changed, p["PE"], width, search=True))
    config = {**case.config, **extra}
    run = run_bench(case.module, case.params, seed=case.seed, config=config, files=files, cache_dir=CACHE, check=False)
    assert run.tests == 3 and run.failures == 3
    assert "mismatching beats" in run.log.read_text()


# ------------------------------------------------------------------------------------------------
# vvau (depthwise) and the bipolar thresholding input
# ------------------------------------------------------------------------------------------------
def _vvau_cases() -> list[cases.Case]:
    return [c for c in cases.all_cases() + cases.representative_cases() if c.module == "vvau"]


@pytest.mark.parametrize("case", _vvau_cases(), ids=lambda c: c.full_id)
def test_vvau_corner_windows_reach_both_accumulator_extremes(case):
    """The corner windows against the corner weight channels give exactly the accumulator range over
    KK products that ACC_W is derived from, and those channels have thresholds at their extremes."""
    from qnnflow.flows.ir import kernels, kernels_dw

    p = case.params
    extra, _files = case.prepare(case.seed)
    w = np.array(extra["weights"])
    bipolar = bool(p["IN_BIPOLAR"]), bool(p["W_BIPOLAR"])
    lo, hi = kernels.accumulator_range(p["KK"], tuple(extra["x_range"]), tuple(extra["w_range"]), xnor=all(bipolar))
    corners = cases.corner_inputs(p["KK"] * p["CH"], extra["x_range"])
    acc = kernels_dw.vvau(corners, w, x_bipolar=bipolar[0], w_bipolar=bipolar[1])
    assert acc[:, :2].min() == lo and acc[:, :2].max() == hi
    assert kernels.value_range(p["ACC_W"], True)[0] <= lo and hi + 1 <= kernels.value_range(p["ACC_W"], True)[1]
    if p["NUM_T"]:
        thr = np.array(extra["thresholds"])
        assert thr[0, -1] == acc[:, 0].max() and thr[1, -1] == acc[:, 1].max()


def _run_modified(case: cases.Case, *, params: dict | None = None, edit_words=None):
    extra, files = case.prepare(case.seed)
    if edit_words:
        words = files["weights.mem"].split()
        edit_words(words)
        files["weights.mem"] = "\n".join(words) + "\n"
    return run_bench(
        case.module, {**case.params, **(params or {})}, seed=case.seed, config={**case.config, **extra}, files=files,
        cache_dir=CACHE, check=False,
    )  # fmt: skip


@pytest.mark.rtl
@pytest.mark.parametrize("case_id", ["vvau/pe3-simd9-ch3-k3-wternary-a4u", "vvau/pe4-simd1-ch8-k2-w2a1b"])
def test_vvau_bench_catches_a_wrong_weight(case_id):
    """One flipped weight bit in the memory file only (the reference keeps the case's weights)
    fails the bench in every traffic mode: with SIMD = KK in one beat, and with NF > 1 folds."""

    def flip(words):
        words[-1] = f"{int(words[-1], 16) ^ 0x1:0{len(words[-1])}x}"

    run = _run_modified(cases.by_id(case_id), edit_words=flip)
    assert run.tests == 3 and run.failures == 3
    assert "mismatching beats" in run.log.read_text()


@pytest.mark.rtl
def test_vvau_accumulator_one_bit_too_narrow_fails():
    """ACC_W one less than derived (thresholds clipped to it, the reference exact): the corner
    windows' wrapped accumulators change the outputs."""
    case = cases.by_id("vvau/pe2-simd1-ch8-k3-w4a4s-thr15-off")
    p = case.params
    narrow = cases.vvau_case(
        "narrowed", ch=p["CH"], kk=p["KK"], pe=p["PE"], simd=p["SIMD"], in_w=p["IN_W"], in_signed=True, w_w=p["W_W"],
        num_t=p["NUM_T"], out_offset=p["OUT_OFFSET"], windows=16, acc_w=p["ACC_W"] - 1,
    )  # fmt: skip
    run = narrow.run(cache_dir=CACHE, check=False)
    log = run.log.read_text()
    assert run.tests == 3 and run.failures == 3, log[-3000:]
    assert "mismatching beats" in log


def _bipolar_threshold_cases() -> list[cases.Case]:
    return [c for c in cases.all_cases() if c.module == "thresholding" and c.params["IN_BIPOLAR"]]


@pytest.mark.parametrize(
    "case", [c for c in _bipolar_threshold_cases() if c.params["NUM_T"] > 1], ids=lambda c: c.full_id
)
def test_bipolar_threshold_cases_tell_values_from_codes(case):
    """On a bipolar thresholding case's own corner pixels, comparing its thresholds with the codes
    0 / 1 instead of the values -1 / +1 gives other outputs (a threshold of 0 fires on +1 only), so
    the bench, which passes against the value reference, would catch a module comparing codes."""
    from qnnflow.flows.ir import kernels

    thr = np.array(case.prepare(case.seed)[0]["thresholds"])
    x = cases.corner_inputs(case.params["CH"], (-1, 1))
    by_value = kernels.thresholding(x, thr, case.params["OUT_OFFSET"])
    by_code = kernels.thresholding((x + 1) // 2, thr, case.params["OUT_OFFSET"])
    assert 0 in thr and not np.array_equal(by_value, by_code)
