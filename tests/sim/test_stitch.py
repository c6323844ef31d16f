"""The stitched accelerator (``qnnflow sim``): codegen's ``rtl/`` simulated in Verilator, against
QONNX execution of the original model.

- the third-party TFC w2a2 on the first 1,000 MNIST test images (batch mode): every decision, the
  accuracy and the frame period against QONNX execution and the estimate;
- the CNV-w1a1 preset with random weights, integer logits out, on a few random images;
- the digits CNN with random weights in cocotb mode, with random input idles and backpressure;
- a residual (fork-join) block: bit-exact with its sized FIFOs, and a deadlock message naming
  the layers and the too-shallow FIFO when one is forced too small; a timeout message;
- every one of these designs (and a residual CNN) also in batch mode with random input idles
  and output backpressure (``simulate(..., stalls=True)``), bit-exact;
- FIFO sizing: a fork-join deadlock of the sized FIFOs falls back to deep ones, recorded in
  results.json and the report; any other stall is an error;
- the CLI's errors.

Builds are shared per module; each test session builds in fresh temporary folders (cold).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from qnnflow.flows.codegen import load_design
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions, OutputMode
from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx

from qnnflow.config import SimMode
from qnnflow.errors import FlowError
from tests.flows.helpers import assert_latency_estimated

# rtl; and one xdist worker for the module (make test: --dist loadgroup), so its module fixtures
# (the TFC and residual builds) are made once, not once per worker
pytestmark = [pytest.mark.rtl, pytest.mark.xdist_group("stitch")]

TFC = "tfc_2w2a_qonnx.onnx"  # Brevitas QONNX export, 96.6 % on the first 1,000 MNIST test images


def _quiet(*_args) -> None:
    pass


def _mnist(mnist_dir, n: int) -> tuple[np.ndarray, np.ndarray]:
    from qnnflow.models.datasets import load_idx_test

    images, labels = load_idx_test(mnist_dir)
    return (images[:n].reshape(-1, 1, 28, 28).astype(np.float32) / 255.0), labels[:n]


def _random_zoo_model(folder, preset: str):
    """A zoo preset with random weights and random BatchNorm statistics, exported to QONNX."""
    pytest.importorskip("torch")
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    shape = parse_preset(preset).input_shape
    return export_qonnx(random_model(preset), folder / f"{preset}.onnx", shape), shape


def _assert_logits_equal(hw: np.ndarray, ref: np.ndarray) -> None:
    """Hardware logits (integers rescaled on the host) against QONNX's float logits."""
    hw = hw.reshape(ref.shape)
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(hw, ref, rtol=0, atol=tol)
    assert (decisions(hw) == decisions(ref)).all()


def _outputs(results: dict) -> np.ndarray:
    return np.load(Path(results["results_dir"]) / "outputs.npy")


def _assert_exact_under_stalls(build, x, want: np.ndarray, *, seed: int) -> dict:
    """``build`` simulated again in batch mode with random input idles and output backpressure:
    every frame bit-exact with the dataflow graph, every output equal to ``want`` (the unstalled
    run's), and the stalls did happen."""
    from qnnflow.sim.accel import stall_traffic
    from qnnflow.sim.stitch import simulate

    r = simulate(build, inputs=x, stalls=True, seed=seed, log=_quiet)
    stalls = r["stalls"]
    assert stall_traffic(seed) == {"in_idle": 0.3, "out_stall": 0.4, "seed": seed}
    assert {k: stalls[k] for k in ("in_idle", "out_stall", "seed")} == stall_traffic(seed)
    assert json.loads((Path(r["results_dir"]) / "results.json").read_text())["stalls"] == stalls
    # the stalls took effect: about 0.3 / 0.7 idles per input beat, 0.4 / 0.6 refusals per output beat
    design = load_design(Path(build) / "rtl")
    assert stalls["input_idle_cycles"] >= 0.2 * design.input.beats * len(x)
    assert stalls["output_refused_cycles"] >= 0.2 * design.output.beats * len(x)
    assert r["results_dir"].endswith(f"-stalls-seed{seed}") and r["frames"] == len(x)
    assert r["mismatches"] == 0, f"first mismatching frames under stalls: {r['first_mismatches']}"
    np.testing.assert_array_equal(_outputs(r), want)
    return r


# ---------------------------------------------------------------------------------------------
# third-party TFC w2a2, batch mode, 1,000 MNIST test images
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tfc(tmp_path_factory, third_party_dir, mnist_dir):
    from qnnflow.sim.stitch import simulate

    x, y = _mnist(mnist_dir, 1000)
    build = tmp_path_factory.mktemp("tfc")
    opts = CompileOptions(target_cycles=1000)
    compile_model(third_party_dir / TFC, build, inputs=x[:100], opts=opts, verbose=False)
    results = simulate(build, inputs=x, labels=y, log=_quiet)
    ref = run_qonnx(load_qonnx(third_party_dir / TFC), x)  # the original model, not the compiled one
    return SimpleNamespace(build=build, x=x, y=y, results=results, ref=ref, outputs=_outputs(results))


def test_tfc_w2a2_bit_exact_on_1000_mnist_images(tfc):
    r = tfc.results
    assert r["frames"] == 1000
    assert r["mismatches"] == 0, f"first mismatching frames: {r['first_mismatches']}"
    assert r["decision_mismatches"] == 0
    # the hardware's class index on every image is QONNX's decision on the original model
    assert tfc.outputs.shape == (1000, 1)
    hw_dec, ref_dec = decisions(tfc.outputs), decisions(tfc.ref)
    assert (hw_dec == ref_dec).all(), f"{int((hw_dec != ref_dec).sum())} images decided differently"
    ref_acc = float((ref_dec == tfc.y).mean())
    assert r["hw_accuracy"] == ref_acc
    assert ref_acc == pytest.approx(0.966, abs=1e-9)  # the published figure for these images


def test_tfc_w2a2_frame_period_matches_the_estimate(tfc):
    r = tfc.results
    est = json.loads((tfc.build / "estimates.json").read_text())
    assert r["cycles_per_frame_estimated"] == est["ii_cycles"] <= 1000
    assert abs(r["cycles_per_frame_measured"] / est["ii_cycles"] - 1) <= 0.05
    assert r["latency_cycles_estimated"] == est["latency_cycles"]
    assert_latency_estimated(r)
    assert r["cycles_simulated"] >= 999 * r["cycles_per_frame_measured"]


def test_tfc_w2a2_decides_like_qonnx_on_its_decision_boundary(tfc, third_party_dir):
    """Inputs bisected onto the original model's boundary between MNIST images go through the RTL."""
    from qnnflow.sim.stitch import check_boundary, prepare_rtl

    # rtl/ up to date first: were it regenerated inside the check (package sources edited since the
    # fixture ran), the regeneration would clear sim/runs/, probes.npy included
    prepare_rtl(tfc.build, log=_quiet)
    b = check_boundary(tfc.build, inputs=tfc.x[:200], pairs=60, log=_quiet)
    probes = np.load(Path(b["results_dir"]) / "probes.npy")
    ref = decisions(run_qonnx(load_qonnx(third_party_dir / TFC), probes))
    lo, hi = np.split(ref, 2)
    assert len(probes) == 120 and np.all(lo != hi)  # every pair straddles the boundary
    hw = decisions(np.load(Path(b["results_dir"]) / "outputs.npy"))
    assert np.array_equal(hw, ref), f"probes decided differently: {np.flatnonzero(hw != ref)[:10]}"
    assert b["hw_vs_source_decision_mismatches"] == 0 and b["hw_vs_dataflow_graph_mismatches"] == 0


# ---------------------------------------------------------------------------------------------
# CNV-w1a1 with random weights, integer logits out, batch mode
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # 80 s; `make test-all` (the digits CNN covers the same layers in `make test`)
def test_cnv_w1a1_random_weights_bit_exact(tmp_path_factory):
    from qnnflow.sim.stitch import simulate

    folder = tmp_path_factory.mktemp("cnv")
    path, shape = _random_zoo_model(folder, "cnv-w1a1")
    x = (np.random.default_rng(1).integers(0, 256, size=(3, *shape)) / 255).astype(np.float32)
    opts = CompileOptions(target_cycles=50_000, output=OutputMode.LOGITS)
    r_c = compile_model(path, folder / "b", inputs=x, opts=opts, verbose=False)
    ops = {lay["op_type"] for lay in r_c.estimates["layers"]}
    assert {"SlidingWindow", "MVAU", "MaxPool"} <= ops
    r = simulate(folder / "b", inputs=x, log=_quiet)
    assert r["mismatches"] == 0, f"first mismatching frames: {r['first_mismatches']}"
    _assert_logits_equal(_outputs(r), run_qonnx(load_qonnx(path), x))
    assert abs(r["cycles_per_frame_measured"] / r["cycles_per_frame_estimated"] - 1) <= 0.05
    assert_latency_estimated(r)
    _assert_exact_under_stalls(folder / "b", x, _outputs(r), seed=11)


def test_digits_cnn_with_tv_smoothing_bit_exact(tmp_path_factory):
    """A digits CNN w2a2 with two TV steps after each convolution (random weights): four
    SlidingWindow + TVSmooth pairs (hw/tv_smooth.sv), bit-exact in the stitched simulation, free
    running and under random stalls, logits equal to QONNX execution of the export."""
    pytest.importorskip("torch")
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.tv import TVConfig
    from qnnflow.models.zoo import random_model
    from qnnflow.sim.stitch import simulate

    folder = tmp_path_factory.mktemp("tv")
    path = export_qonnx(random_model("digits-cnn-w2a2", tv=TVConfig(2, 0.75)), folder / "tv.onnx", (1, 8, 8))
    x = (np.random.default_rng(5).integers(0, 33, size=(24, 1, 8, 8)) / 16).astype(np.float32)
    opts = CompileOptions(target_cycles=10_000, output=OutputMode.LOGITS)
    r_c = compile_model(path, folder / "b", inputs=x, opts=opts, verbose=False)
    assert sum(lay["op_type"] == "TVSmooth" for lay in r_c.estimates["layers"]) == 4
    r = simulate(folder / "b", inputs=x, log=_quiet)
    assert r["mismatches"] == 0, f"first mismatching frames: {r['first_mismatches']}"
    _assert_logits_equal(_outputs(r), run_qonnx(load_qonnx(path), x))
    assert abs(r["cycles_per_frame_measured"] / r["cycles_per_frame_estimated"] - 1) <= 0.05
    assert_latency_estimated(r)
    _assert_exact_under_stalls(folder / "b", x, _outputs(r), seed=17)


# ---------------------------------------------------------------------------------------------
# digits CNN with random weights, cocotb mode with random stalls
# ---------------------------------------------------------------------------------------------
def test_digits_cnn_cocotb_random_stalls(tmp_path_factory):
    from qnnflow.flows.ir.execute import run_batched
    from qnnflow.sim.stitch import load_model, simulate

    folder = tmp_path_factory.mktemp("digits")
    path, shape = _random_zoo_model(folder, "digits-cnn-w2a2")
    x = (np.random.default_rng(2).integers(0, 17, size=(4, *shape)) / 16).astype(np.float32)
    opts = CompileOptions(target_cycles=2000, output=OutputMode.LOGITS)
    compile_model(path, folder / "b", inputs=x, opts=opts, verbose=False)
    r = simulate(folder / "b", inputs=x, mode=SimMode.COCOTB, seed=5, log=_quiet)
    assert r["mode"] == "cocotb" and r["frames"] == 4 and r["seed"] == 5
    assert r["mismatches"] == 0 and r["cocotb_mismatching_beats"] == 0
    assert "input idles 0.3" in r["traffic"] and "output ready 0.6" in r["traffic"]
    hw = _outputs(r)
    # every output equals the dataflow graph's execution, and QONNX's on the original model
    np.testing.assert_array_equal(hw, run_batched(load_model(folder / "b"), x).reshape(hw.shape))
    _assert_logits_equal(hw, run_qonnx(load_qonnx(path), x))
    # and the same design in batch mode, free-running and with random stalls
    free = simulate(folder / "b", inputs=x, log=_quiet)
    assert free["mismatches"] == 0 and free["stalls"] is None
    assert_latency_estimated(free)
    np.testing.assert_array_equal(_outputs(free), hw)
    _assert_exact_under_stalls(folder / "b", x, hw, seed=12)


# ---------------------------------------------------------------------------------------------
# a residual block: fork-join FIFOs, deadlock and timeout messages
# ---------------------------------------------------------------------------------------------
def _residual_mlp():
    """x -> fc1 -> BN -> q ; q -> fc2 -> BN -> q ; relu-quant(sum) -> fc3 (a fork and a join)."""
    torch = pytest.importorskip("torch")
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import Int8WeightPerTensorFloat

    wq = {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": 2, "bias": False}

    class ResidualMLP(torch.nn.Module):
        def __init__(self, width: int = 16):
            super().__init__()
            self.inp, self.q = QuantIdentity(bit_width=4), QuantIdentity(bit_width=4)
            self.fc1, self.bn1 = QuantLinear(16, width, **wq), torch.nn.BatchNorm1d(width)
            self.fc2, self.bn2 = QuantLinear(width, width, **wq), torch.nn.BatchNorm1d(width)
            self.act, self.fc3 = QuantReLU(bit_width=3), QuantLinear(width, 10, **wq)

        def forward(self, x):
            y = self.q(self.bn1(self.fc1(self.inp(x).flatten(1))))
            return self.fc3(self.act(y + self.q(self.bn2(self.fc2(y)))))

    torch.manual_seed(0)
    return ResidualMLP().eval()


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    from qnnflow.models.export import export_qonnx
    from qnnflow.sim.stitch import load_model, simulate

    folder = tmp_path_factory.mktemp("residual")
    path = export_qonnx(_residual_mlp(), folder / "res.onnx", (1, 4, 4))
    x = np.random.default_rng(0).random((16, 1, 4, 4)).astype(np.float32)
    r_c = compile_model(path, folder / "b", inputs=x, opts=CompileOptions(target_cycles=64), verbose=False)
    ops = [lay["op_type"] for lay in r_c.estimates["layers"]]
    assert ops.count("DuplicateStreams") == 1 and ops.count("AddStreams") == 1
    results = simulate(folder / "b", inputs=x, log=_quiet)
    return SimpleNamespace(
        folder=folder, path=path, x=x, results=results, outputs=_outputs(results), model=load_model(folder / "b")
    )


def test_residual_block_bit_exact_with_sized_fifos(residual):
    r = residual.results
    assert r["mismatches"] == 0
    hw = residual.outputs
    assert (decisions(hw) == decisions(run_qonnx(load_qonnx(residual.path), residual.x))).all()
    assert abs(r["ii_ratio"] - 1) <= 0.05
    assert_latency_estimated(r)
    # sized without a fallback: every FIFO as deep as its largest fill + 1, the skip branch's
    # shallower than a frame, and the record in results.json
    sizing = r["fifo_sizing"]
    assert sizing["fallback"] is None and sizing["sized_period"] is not None
    assert {f["name"]: f["depth"] for f in sizing["fifos"]} == r["fifo_depths"]
    assert all(f["depth"] == max(2, f["largest_fill"] + 1) for f in sizing["fifos"])
    assert json.loads((Path(r["results_dir"]) / "results.json").read_text())["fifo_sizing"] == sizing


def test_residual_block_bit_exact_under_stalls(residual):
    _assert_exact_under_stalls(residual.folder / "b", residual.x, residual.outputs, seed=13)


def test_tfc_w2a2_bit_exact_under_stalls(tfc):
    r = _assert_exact_under_stalls(tfc.build, tfc.x[:200], tfc.outputs[:200], seed=14)
    assert (decisions(_outputs(r)) == decisions(tfc.ref[:200])).all()


def test_thresholds_in_block_ram_bit_exact_and_on_time(tmp_path):
    """A layer whose thresholds go to block RAM (128 folds of one lane, 2-bit activations:
    memfiles.rom_in_block_ram) gets THR_BRAM, the read's second register beside the compares
    (hw/mac_pipeline.sv): bit-exact with QONNX execution, the latency estimate following the
    extra cycle, the II the estimate's."""
    torch = pytest.importorskip("torch")
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import Int8WeightPerTensorFloat
    from qnnflow.flows.codegen import memfiles
    from qnnflow.models.export import export_qonnx
    from qnnflow.sim.stitch import simulate

    wq = {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": 2, "bias": False}
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        QuantIdentity(bit_width=4), torch.nn.Flatten(), QuantLinear(16, 128, **wq), torch.nn.BatchNorm1d(128),
        QuantReLU(bit_width=2), QuantLinear(128, 10, **wq),
    ).eval()  # fmt: skip
    with torch.no_grad():  # BatchNorm statistics that spread the thresholds
        net[3].running_mean.uniform_(-1, 1), net[3].running_var.uniform_(0.5, 2)
    path = export_qonnx(net, tmp_path / "deep.onnx", (1, 4, 4))
    x = np.random.default_rng(2).random((6, 1, 4, 4)).astype(np.float32)
    compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=4096), verbose=False)
    r = simulate(tmp_path / "b", inputs=x, log=_quiet)  # (code generation, then the simulation)
    layers = [lay for lay in load_design(tmp_path / "b" / "rtl").layers if int(lay["params"].get("NUM_T", 0))]
    (deep,) = [lay for lay in layers if int(lay["params"].get("THR_BRAM", 0))]
    p = deep["params"]
    nf = int(p["MH"]) // int(p["PE"])
    assert memfiles.rom_in_block_ram(nf, int(p["PE"]) * int(p["NUM_T"]) * int(p["ACC_W"]))
    assert r["mismatches"] == 0
    assert (decisions(_outputs(r)) == decisions(run_qonnx(load_qonnx(path), x))).all()
    assert_latency_estimated(r, slack=0)
    assert abs(r["ii_ratio"] - 1) <= 0.05


def test_residual_cnn_bit_exact_under_stalls(tmp_path):
    """The conv residual block of tests/flows/test_residual.py (two sliding windows, a fork and a
    join, max-pool): stitched, sized, bit-exact free-running and under random stalls."""
    import torch
    from qnnflow.sim.stitch import simulate

    from tests.flows.test_residual import ResidualCNN, _export, _inputs

    torch.manual_seed(1)
    path = _export(ResidualCNN(), tmp_path / "rescnn.onnx", (1, 6, 6))
    x = _inputs((1, 6, 6), 12)
    compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=2000), verbose=False)
    r = simulate(tmp_path / "b", inputs=x, log=_quiet)
    assert r["mismatches"] == 0 and r["fifo_sizing"]["fallback"] is None
    assert (decisions(_outputs(r)) == decisions(run_qonnx(load_qonnx(path), x))).all()
    assert abs(r["ii_ratio"] - 1) <= 0.05
    assert_latency_estimated(r)
    _assert_exact_under_stalls(tmp_path / "b", x, _outputs(r), seed=15)


def _shallow_residual(residual):
    """The residual design with every FIFO 2 deep: the skip branch cannot hold the beats that the
    main branch's MVAU takes before its first output. Returns the design, the skip FIFO, inputs."""
    from qnnflow.flows.codegen import generate
    from qnnflow.sim.accel import HostIO

    rtl = residual.folder / "rtl_shallow"
    deep = generate(residual.model, rtl)
    design = generate(residual.model, rtl, {f.name: 2 for f in deep.fifos})
    kinds = {lay["instance"]: lay["op_type"] for lay in design.layers}
    skip = [
        f for f in design.fifos
        if kinds[design.streams[f.in_stream].src] == "DuplicateStreams"
        and kinds[design.streams[f.out_stream].dst] == "AddStreams"
    ]  # fmt: skip
    assert len(skip) == 1
    hw_in, want, _ = HostIO(residual.model, design).run(residual.x[:3])
    return design, skip[0], hw_in, want


def _assert_names_the_fork_join(msg: str, design, skip) -> None:
    add = next(lay["instance"] for lay in design.layers if lay["op_type"] == "AddStreams")
    dup = next(lay["instance"] for lay in design.layers if lay["op_type"] == "DuplicateStreams")
    stopped = msg.split("stopped at:")[1]
    assert f"{add} (AddStreams) waits for" in stopped and "(valid=0) while it holds" in stopped
    assert f"{dup} (DuplicateStreams) cannot pass on its input" in stopped
    assert f"full FIFOs: {skip.name} (depth 2)" in stopped
    for i in range(len(design.streams)):  # every stream's handshake bits are listed
        assert f"{design.stream_where(i)}: valid=" in msg


def test_fifo_too_shallow_in_a_fork_join_reports_the_deadlock(residual):
    from qnnflow.sim.accel import build_batch, pack_stream, run_batch

    design, skip, hw_in, _ = _shallow_residual(residual)
    exe = build_batch(design, residual.folder / "b" / "sim" / "verilator", log=_quiet)  # shared with sizing
    with pytest.raises(FlowError) as err:
        run_batch(exe.path, design, pack_stream(hw_in, design.input), 3, residual.folder / "run_shallow")
    msg = str(err.value)
    assert msg.startswith("accelerator deadlock at cycle ")
    assert "0 of 3 frames completed" in msg
    _assert_names_the_fork_join(msg, design, skip)


def test_fifos_deeper_than_a_block_row_are_chains_bit_exact(residual):
    """Every FIFO of the residual design made deeper than one row of block RAMs (memfiles.
    fifo_segment_depth): each becomes hw/fifo_chain.sv, and the stitched design stays bit-exact
    with the dataflow graph on 3 frames, at the sized design's frame period."""
    from qnnflow.flows.codegen import generate, memfiles
    from qnnflow.sim.accel import HostIO, build_batch, pack_stream, run_batch

    sized = load_design(residual.folder / "b" / "rtl")

    def chained(width: int) -> int:  # the least depth (of a few) that needs more than one row
        return next(d for d in (600, 1100, 2100, 4200, 8300, 16500) if memfiles.fifo_segment_depth(d, width))

    depths = {f.name: chained(sized.streams[f.in_stream].width) for f in sized.fifos}
    design = generate(residual.model, residual.folder / "rtl_chains", depths)
    modules = {lay["instance"]: lay["module"] for lay in design.layers}
    assert design.fifos and all(modules[f"u_{f.name}"] == "fifo_chain" for f in design.fifos), modules
    hw_in, want, _ = HostIO(residual.model, design).run(residual.x[:3])
    exe = build_batch(design, residual.folder / "b" / "sim" / "verilator", log=_quiet)
    run = run_batch(exe.path, design, pack_stream(hw_in, design.input), 3, residual.folder / "run_chains")
    assert run.status == "ok" and run.frames_done == 3
    np.testing.assert_array_equal(run.outputs, want.reshape(run.outputs.shape))
    assert all(fill <= depth for fill, depth in zip(run.fifo_fill, depths.values(), strict=True))


# ---------------------------------------------------------------------------------------------
# FIFO sizing: a fallback only at a fork-join deadlock, recorded; any other stall an error
# ---------------------------------------------------------------------------------------------
def _fresh_build(residual, name: str) -> Path:
    """A build folder with the residual's dataflow graph and no rtl/ (so sizing runs again); the
    Verilator builds are shared with the residual's."""
    import shutil

    folder = residual.folder / name
    (folder / "sim").mkdir(parents=True)
    for f in ("dataflow.onnx", "estimates.json"):
        shutil.copy(residual.folder / "b" / f, folder / f)
    (folder / "sim" / "verilator").symlink_to((residual.folder / "b" / "sim" / "verilator").resolve())
    return folder


def test_fifo_sizing_falls_back_at_a_fork_join_deadlock_and_records_it(residual, monkeypatch):
    """Sized depths forced to 2 deadlock the residual block at its skip FIFO: the sizing keeps the
    deep FIFOs, names the FIFO, and the record reaches results.json and report.md."""
    from qnnflow.flows.implement.report import _md
    from qnnflow.sim import fifo_sizing
    from qnnflow.sim.fifo_sizing import deep_depths
    from qnnflow.sim.stitch import simulate

    design, skip, _, _ = _shallow_residual(residual)
    monkeypatch.setattr(fifo_sizing, "sized_depths", lambda fills: {name: 2 for name in fills})
    build = _fresh_build(residual, "fallback")
    r = simulate(build, inputs=residual.x, log=_quiet)
    assert r["mismatches"] == 0
    fb = r["fifo_sizing"]["fallback"]
    assert fb["kind"] == "fork-join deadlock" and skip.name in fb["fifos"]
    assert fb["reason"].startswith("sized FIFOs deadlock between a fork and its join at the full FIFO(s) ")
    deep = deep_depths(design)
    assert r["fifo_depths"] == deep == {f["name"]: f["depth"] for f in r["fifo_sizing"]["fifos"]}
    assert json.loads((Path(r["results_dir"]) / "results.json").read_text())["fifo_sizing"]["fallback"] == fb
    assert json.loads((build / "rtl" / "fifo_sizing.json").read_text())["fallback"] == fb
    # report.md: the one line that says so (the rest of a report needs an implementation)
    report = {
        "build": str(build), "board": "b", "part": "p", "bitstream": None, "timing_met": True,
        "clock": {"pll_mhz": 50, "requested_mhz": 50}, "fmax": {}, "utilization": {}, "performance": {},
        "accuracy": None, "simulation": "current", "fifo_sizing_fallback": fb, "xc7z020_estimate": None,
        "seconds": {}, "logs": {},
    }  # fmt: skip
    assert f"- FIFOs kept one frame deep (sizing fallback): {fb['reason']}" in _md(report).splitlines()


def test_fifo_sizing_falls_back_when_the_sized_design_is_slower(residual, monkeypatch):
    """The other fallback: sized FIFOs that finish every frame but slower than the deep ones (here
    the allowed slack made negative, so any sized period counts as slower) keep the deep FIFOs."""
    from qnnflow.sim import fifo_sizing
    from qnnflow.sim.accel import HostIO

    monkeypatch.setattr(fifo_sizing, "PERIOD_SLACK", -0.99)
    hw_in, _, _ = HostIO(residual.model, load_design(residual.folder / "b" / "rtl")).run(residual.x[:4])
    design, record = fifo_sizing.size_fifos(
        residual.model, residual.folder / "rtl_slower", residual.folder / "sizing_slower", hw_in,
        residual.folder / "b" / "sim" / "verilator", log=_quiet,
    )  # fmt: skip
    fb = record["fallback"]
    assert fb["kind"] == "slower frame period" and fb["fifos"] == []
    assert fb["reason"] == (
        f"sized FIFOs give {record['sized_period']:.0f} cycles per frame, deep ones {record['deep_period']:.0f}"
    )
    assert {f.name: f.depth for f in design.fifos} == fifo_sizing.deep_depths(design)
    assert fifo_sizing.load_record(residual.folder / "rtl_slower") == json.loads(json.dumps(record))


@pytest.mark.parametrize("run", ["check", "free"])
def test_fifo_sizing_stall_that_depth_does_not_explain_is_an_error(residual, monkeypatch, run):
    """An accelerator output that is never taken stops the design, and no FIFO is between a
    stopped fork and join: with the sized FIFOs ("check") or the deep ones ("free") that is an
    error naming where it stopped, never a fallback."""
    from qnnflow.sim import fifo_sizing
    from qnnflow.sim.accel import HostIO

    real = fifo_sizing.run_batch

    def output_never_taken(exe, design, words, frames, work, **kw):
        if Path(work).name == run:
            kw.update(out_stall=1.0, max_idle=500)
        return real(exe, design, words, frames, work, **kw)

    monkeypatch.setattr(fifo_sizing, "run_batch", output_never_taken)
    hw_in, _, _ = HostIO(residual.model, load_design(residual.folder / "b" / "rtl")).run(residual.x[:4])
    with pytest.raises(FlowError) as err:
        fifo_sizing.size_fifos(
            residual.model, residual.folder / f"rtl_{run}", residual.folder / f"sizing_{run}", hw_in,
            residual.folder / "b" / "sim" / "verilator", log=_quiet,
        )  # fmt: skip
    msg = str(err.value)
    head = {
        "check": "FIFO sizing: the design with sized FIFOs stopped, and not at a full FIFO between a fork and its "
        "join, so deeper FIFOs would not help:\naccelerator deadlock at cycle ",
        "free": "FIFO sizing: the design with deep FIFOs (one frame each) stopped, which no FIFO depth explains:\n"
        "accelerator deadlock at cycle ",
    }[run]
    assert msg.startswith(head)
    stopped = msg.split("stopped at:")[1]
    assert "the accelerator output is not taken" in stopped and "m_axis_tready=0" in stopped
    assert "full FIFOs" not in stopped


def test_cocotb_mode_reports_the_deadlock(residual):
    from qnnflow.sim.accel import run_cocotb

    design, skip, hw_in, want = _shallow_residual(residual)
    with pytest.raises(FlowError) as err:
        run_cocotb(design, hw_in, want, residual.folder / "cocotb_shallow", seed=3, max_idle=300, log=_quiet)
    msg = str(err.value)
    assert msg.startswith("accelerator deadlock at cycle ")
    assert "0 of 3 frames came out; seed 3" in msg
    _assert_names_the_fork_join(msg, design, skip)


def test_cycle_limit_reports_a_timeout(tfc):
    from qnnflow.flows.codegen import load_design
    from qnnflow.sim.accel import HostIO, build_batch, pack_stream, run_batch
    from qnnflow.sim.stitch import load_model

    design = load_design(tfc.build / "rtl")
    exe = build_batch(design, tfc.build / "sim" / "verilator", log=_quiet)
    assert not exe.built  # the simulation's build is reused
    hw_in, _, _ = HostIO(load_model(tfc.build), design).run(tfc.x[:4])
    with pytest.raises(FlowError) as err:
        run_batch(exe.path, design, pack_stream(hw_in, design.input), 4, tfc.build / "timeout", max_cycles=300)
    msg = str(err.value)
    assert msg.startswith("accelerator timeout: the cycle limit (300) was reached before every frame came out")
    assert "0 of 4 frames completed" in msg
    assert f"{design.stream_where(0)}: valid=" in msg


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------
def test_cli_sim_and_its_errors(tfc, tmp_path, capsys):
    from qnnflow.cli import main

    assert main(["sim", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == (
        f"qnnflow sim: error: {tmp_path / 'dataflow.onnx'} not found: compile the model first "
        f"(qnnflow compile MODEL --out {tmp_path})"
    )
    np.save(tmp_path / "x.npy", tfc.x[:40])
    np.save(tmp_path / "y.npy", tfc.y[:40])
    for frames in ("0", "41"):
        assert main(["sim", str(tfc.build), "--inputs", str(tmp_path / "x.npy"), "--frames", frames]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"qnnflow sim: error: frames must be in 1..40 (the inputs), not {frames}"
    args = ["sim", str(tfc.build), "--inputs", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main([*args, "--frames", "30"]) == 0
    out = capsys.readouterr().out
    assert "[sim] 30 frames (batch): 0 mismatches" in out
    (run,) = (tfc.build / "sim" / "runs").glob("batch-inputs-*-30frames")  # not the build's own record
    r = json.loads((run / "results.json").read_text())
    assert r["frames"] == 30 and r["mismatches"] == 0
    assert r["hw_accuracy"] == float((decisions(tfc.ref[:30]) == tfc.y[:30]).mean())


def test_tfc_w2a2_bit_exact_on_all_10000_mnist_images(tfc, third_party_dir, mnist_dir):
    from qnnflow.sim.stitch import simulate

    x, y = _mnist(mnist_dir, 10_000)
    r = simulate(tfc.build, inputs=x, labels=y, log=_quiet)
    ref_dec = decisions(run_qonnx(load_qonnx(third_party_dir / TFC), x))
    assert r["mismatches"] == 0 and r["decision_mismatches"] == 0
    assert (decisions(_outputs(r)) == ref_dec).all()
    assert r["hw_accuracy"] == float((ref_dec == y).mean())
    assert abs(r["ii_ratio"] - 1) <= 0.05
