"""3- to 8-bit models end to end: compile, stitched Verilator simulation, QONNX execution.

Every case compiles a model (``compile_model``, verified against QONNX execution of the export),
simulates the stitched accelerator in batch mode on a few frames and asserts

- 0 mismatches between the hardware's integers and the dataflow graph's;
- labels: the hardware's class index on every frame is QONNX's decision on the original model;
  logits: the hardware's integer logits equal QONNX's float logits mapped back to integers by the
  source model's own output scale (read from its quantizers, not from the compiler);
- the measured cycles per frame equal the estimate;
- the widest MVAU accumulator in ``rtl/design.json`` is the width derived by hand below from the
  quantizers' types, so the 8-bit input layers and the 32-bit accumulator are really built and run.

Models: the digits CNN and TFC presets with random weights and BatchNorm statistics
(``models.zoo.random_model``) at W/A 3, 4 and 8 bits, ternary and mixed widths; and two models built
directly with onnx.helper and QONNX ``Quant`` nodes, as another tool would write them: an MLP with a
signed 8-bit input, 5-bit weights with per-channel scales, a float per-channel affine map with
negative factors and 6-bit activations; and a 65,536-input dot product of 8-bit inputs and
full-range 8-bit weights (-128 included) whose accumulator needs all 32 bits, with rows of all
-128 and all +127 weights and an all-255 input frame reaching both ends of it.

The first two frames of every zoo case are the all-max and the all-zero input (the first layer's
accumulator extremes), the rest random. Each case is one test (one design, one Verilator build).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.codegen import load_design
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions, OutputMode

from tests.flows.helpers import assert_latency_estimated

pytestmark = pytest.mark.rtl

QONNX_DOMAIN = "qonnx.custom_op.general"
FRAMES = 20
LABELS, LOGITS = OutputMode.LABELS, OutputMode.LOGITS


def _quiet(*_args) -> None:
    pass


@dataclass(frozen=True)
class Case:
    preset: str
    output: OutputMode
    acc_w: int  # the widest MVAU accumulator, derived by hand (comments below)
    target_cycles: int = 60_000  # PE = SIMD = 1 almost everywhere: small designs, quick builds
    slow: bool = False  # make test-all only: its widths are covered by another case of make test

    @property
    def id(self) -> str:
        return f"{self.preset}-{self.output.value}"


# ACC_W is the signed width of [lo, hi + 1], lo..hi the accumulator's range over the types (the +1
# leaves room for a threshold that never fires). MW products of inputs in [0, X] and weights of a
# signed W-bit type (-2^(W-1) .. 2^(W-1) - 1) reach lo = -MW * X * 2^(W-1), so ACC_W is the first b
# with MW * X * 2^(W-1) <= 2^(b-1); ternary weights (-1..1): MW * X + 1 <= 2^(b-1) - 1. Digits: 5-bit
# input (X = 31) into conv 3x3x1 (MW 9), then conv 3x3x32 (MW 288) and FC 256 on A-bit activations;
# TFC: 8-bit input (X = 255) into FC 784, then FC 64 x 3. The widest layer is named at each case.
ZOO = [
    Case("digits-cnn-w3a3", LABELS, 14),  # conv 2: 288 * 7 * 4 = 8,064 < 2^13
    Case("digits-cnn-w4a4", LOGITS, 17),  # conv 2: 288 * 15 * 8 = 34,560 < 2^16
    # make test-all: 8-bit weights are w8a8's, 3-bit activations w3a3's
    Case("digits-cnn-w8a3", LABELS, 19, slow=True),  # conv 2: 288 * 7 * 128 = 258,048 < 2^18
    Case("digits-cnn-w8a8", LOGITS, 25),  # conv 2: 288 * 255 * 128 = 9,400,320 < 2^24
    Case("digits-cnn-w8a8", LABELS, 25, slow=True),  # the same accumulators as the logits case
    Case("digits-cnn-wta2", LABELS, 11),  # conv 2: 288 * 3 * 1 = 864 < 2^10
    Case("tfc-w3a3", LABELS, 21, slow=True),  # FC 1, 8-bit input: 784 * 255 * 4 = 799,680 < 2^20 (make test-all)
    # make test-all: TFC's 8-bit input layer is tfc-w8a8's, 4-bit weights digits-cnn-w4a4's
    Case("tfc-w4a2", LABELS, 22, slow=True),  # FC 1: 784 * 255 * 8 = 1,599,360 < 2^21
    Case("tfc-w8a8", LOGITS, 26, target_cycles=4000),  # FC 1: 784 * 255 * 128 = 25,589,760 < 2^25; SIMD > 8
    Case("tfc-wta2", LOGITS, 19),  # FC 1: 784 * 255 * 1 = 199,920 < 2^18
]


# ---------------------------------------------------------------------------------------------
# shared checks
# ---------------------------------------------------------------------------------------------
def _compile_and_simulate(path: Path, build: Path, x: np.ndarray, output: OutputMode, target_cycles: int) -> dict:
    from qnnflow.sim.stitch import simulate

    opts = CompileOptions(target_cycles=target_cycles, output=output)
    compile_model(path, build, inputs=x, opts=opts, verbose=False)
    r = simulate(build, inputs=x, log=_quiet)
    assert r["frames"] == len(x)
    assert r["mismatches"] == 0, f"first frames where the hardware differs from the graph: {r['first_mismatches']}"
    est = json.loads((build / "estimates.json").read_text())["ii_cycles"]
    assert r["cycles_per_frame_estimated"] == est
    assert r["cycles_per_frame_measured"] == est, "measured II differs from the estimate"
    assert_latency_estimated(r)
    # the same design under random input idles and output backpressure: still every value exact
    stalled = simulate(build, inputs=x[:8], stalls=True, seed=7, log=_quiet)
    assert stalled["mismatches"] == 0 and stalled["stalls"], f"under stalls: {stalled['first_mismatches']}"
    return r


def _hw_ints(build: Path, r: dict) -> np.ndarray:
    """The integers the accelerator put out (frames, values), decoded from the harness's dump."""
    from qnnflow.sim.accel import unpack_stream

    design = load_design(build / "rtl")
    words = np.fromfile(Path(r["results_dir"]) / "batch" / "out.bin", dtype="<u4")
    return unpack_stream(words, r["frames"], design.streams[design.out_index])


def _assert_widest_acc(build: Path, claim: int) -> None:
    layers = json.loads((build / "rtl" / "design.json").read_text())["layers"]
    widths = {lay["name"]: lay["params"]["ACC_W"] for lay in layers if lay["op_type"] == "MVAU"}
    assert widths, "no MVAU in the design"
    assert max(widths.values()) == claim, f"widest MVAU accumulator not {claim} bits: per layer {widths}"


def _quant_scale(model, tensor: str) -> float:
    """The per-tensor scale of the Quant node that ``tensor`` comes from, through max-pooling and
    reshapes (which keep the values)."""
    node = model.find_producer(tensor)
    while node is not None and node.op_type in ("MaxPool", "Reshape", "Flatten", "Transpose"):
        node = model.find_producer(node.input[0])
    assert node is not None and node.op_type == "Quant", f"{tensor} does not come from a Quant node"
    scale = model.get_initializer(node.input[1])
    assert scale is not None and scale.size == 1, f"{node.name}: expected one per-tensor scale"
    return float(scale.reshape(()))


def _output_scale(model) -> float:
    """The source model's logit scale: its last layer (bias-free, as the zoo's) is the integer
    accumulator of a quantized activation and quantized weights, times the two scales."""
    last = model.find_producer(model.graph.output[0].name)
    assert last.op_type in ("Gemm", "MatMul") and len(last.input) == 2, f"unexpected output node {last.op_type}"
    return _quant_scale(model, last.input[0]) * _quant_scale(model, last.input[1])


def _check_against_qonnx(source: Path, build: Path, r: dict, x: np.ndarray, output: OutputMode) -> None:
    from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx

    model = load_qonnx(source)
    ref = run_qonnx(model, x).reshape(len(x), -1)
    hw = _hw_ints(build, r)
    if output is LABELS:
        assert hw.shape == (len(x), 1)
        assert len(np.unique(decisions(ref))) >= 3, "too few classes among the frames to see a wrong decision"
        assert np.array_equal(hw[:, 0], decisions(ref)), f"hardware {hw[:, 0]} != QONNX {decisions(ref)}"
        assert r["decision_mismatches"] == 0
        return
    # QONNX runs in float32: its logits over the output scale are integers up to rounding (about
    # 0.06 at 2^19 on the 8-bit digits CNN), far from ambiguous below 2^24
    q = ref / _output_scale(model)
    off = np.abs(q - np.rint(q)).max()
    assert off < 0.25, f"QONNX's logits are {off:.3f} away from integers times the output scale"
    assert hw.shape == q.shape
    assert len(np.unique(np.rint(q), axis=0)) >= len(x) // 2, "the logits hardly depend on the input"
    np.testing.assert_array_equal(hw, np.rint(q).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# the zoo presets, random weights
# ---------------------------------------------------------------------------------------------
def _zoo_inputs(preset: str, mnist_dir: Path) -> np.ndarray:
    """FRAMES inputs on the preset's input grid: the all-max and the all-zero input, then test
    images (the 8x8 digits 0..16 / 16 of 0..31 / 16; MNIST 0..255 / 255)."""
    from qnnflow.models.zoo import parse_preset

    if parse_preset(preset).topology == "digits-cnn":
        from qnnflow.models.datasets import load_dataset

        images, top = load_dataset("digits").x_test[: FRAMES - 2], 31 / 16
    else:
        from qnnflow.models.datasets import load_idx_test

        images, top = load_idx_test(mnist_dir)[0][: FRAMES - 2].reshape(-1, 1, 28, 28) / 255, 1.0
    extremes = np.stack([np.full(images.shape[1:], top), np.zeros(images.shape[1:])])
    return np.concatenate([extremes, images]).astype(np.float32)


def _random_model(preset: str, x: np.ndarray):
    """``random_model`` (random weights and BatchNorm gains / offsets, negative ones included) with
    its BatchNorm statistics taken from ``x``: otherwise the random means saturate the activations,
    every input gets the same class and the same logits, and a test of them could hardly fail."""
    import torch
    from qnnflow.models.zoo import parse_preset, random_model

    model = random_model(preset, seed=1)
    if parse_preset(preset).weight == "t":
        # the ternary quantizer's constant scale is 0.1 (zero below 0.05): the default init of a
        # 784-input layer (|w| < 0.036) would quantize to all zeros
        gen = torch.Generator().manual_seed(1)
        for mod in model.modules():
            if hasattr(mod, "quant_weight"):
                mod.weight.data = (torch.rand(mod.weight.shape, generator=gen) - 0.5) * 0.3
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # the plain average over the batches seen
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(x))
    return model.eval()


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in ZOO], ids=lambda c: c.id
)
def test_zoo_preset_bit_exact(case: Case, tmp_path, mnist_dir):
    pytest.importorskip("torch")
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset

    x = _zoo_inputs(case.preset, mnist_dir)
    model = _random_model(case.preset, x)
    path = export_qonnx(model, tmp_path / f"{case.preset}.onnx", parse_preset(case.preset).input_shape)
    r = _compile_and_simulate(path, tmp_path / "b", x, case.output, case.target_cycles)
    _check_against_qonnx(path, tmp_path / "b", r, x, case.output)
    _assert_widest_acc(tmp_path / "b", case.acc_w)


# ---------------------------------------------------------------------------------------------
# QONNX models written directly (onnx.helper + Quant nodes), not by Brevitas
# ---------------------------------------------------------------------------------------------
class _Graph:
    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        a = np.asarray(value, dtype=np.float32)
        self.inits.append(helper.make_tensor(name, TensorProto.FLOAT, a.shape, a.ravel()))
        return name

    def node(self, op: str, name: str, inputs: list[str], **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def quant(self, name: str, x: str, scale, bits: int, signed: bool, narrow: bool = False) -> str:
        ins = [x, self.const(f"{name}_scale", scale), self.const(f"{name}_zp", 0.0), self.const(f"{name}_bits", bits)]
        self.nodes.append(
            helper.make_node(
                "Quant", ins, [name], name=name, domain=QONNX_DOMAIN,
                signed=int(signed), narrow=int(narrow), rounding_mode="ROUND",
            )
        )  # fmt: skip
        return name

    def save(self, path: Path, x: str, y: str, n_in: int, n_out: int) -> Path:
        import onnx

        graph = helper.make_graph(
            self.nodes, "handmade", [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, n_in])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, n_out])], self.inits,
        )  # fmt: skip
        opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
        onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
        return path


def _mlp_w5a6(path: Path, sizes=(48, 32, 16, 10), seed: int = 0) -> Path:
    """x (signed 8 bits, scale 1/64) -> [MatMul(5-bit narrow weights, per-channel scales) ->
    Mul(per-channel, some negative) -> Add -> Relu -> Quant(6-bit unsigned)] -> [the same, with a
    signed 6-bit Quant and no Relu] -> MatMul (5-bit, one scale) -> Mul: logits."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    x = g.quant("q_in", "x", 1 / 64, 8, signed=True)
    for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        scale = np.exp(rng.uniform(np.log(1 / 32), np.log(1 / 4), size=() if last else (1, fout)))
        w = rng.uniform(-15.5, 15.5, size=(fin, fout)) * scale
        x = g.node("MatMul", f"mm{i}", [x, g.quant(f"q_w{i}", g.const(f"w{i}", w), scale, 5, True, narrow=True)])
        if last:
            x = g.node("Mul", "logit_scale", [x, g.const("out_scale", 0.5)])
            break
        gain = rng.uniform(0.2, 2.0, size=(1, fout)) * rng.choice([-1, 1], size=(1, fout))
        x = g.node("Mul", f"bn_mul{i}", [x, g.const(f"gain{i}", gain)])
        x = g.node("Add", f"bn_add{i}", [x, g.const(f"bias{i}", rng.normal(size=(1, fout)) * 4)])
        if i == 0:
            x = g.quant(f"q_a{i}", g.node("Relu", f"relu{i}", [x]), 0.25, 6, signed=False)
        else:  # a signed activation: thresholds with a negative output offset (-32)
            x = g.quant(f"q_a{i}", x, 0.25, 6, signed=True)
    return g.save(path, "x", x, sizes[0], sizes[-1])


def test_handmade_qonnx_mlp_w5a6_signed_8bit_input(tmp_path):
    """Labels out; the first MVAU takes signed 8-bit inputs: 48 * (-128) * (-16) = 98,304 < 2^17
    -> ACC_W 18; the second puts out signed 6-bit activations, the last takes them."""
    path = _mlp_w5a6(tmp_path / "mlp.onnx")
    ints = np.random.default_rng(3).integers(-128, 128, size=(30, 48))
    ints[0], ints[1], ints[2] = 127, -128, 0
    x = (ints / 64).astype(np.float32)
    r = _compile_and_simulate(path, tmp_path / "b", x, LABELS, 100_000)
    _check_against_qonnx(path, tmp_path / "b", r, x, LABELS)
    layers = json.loads((tmp_path / "b" / "rtl" / "design.json").read_text())["layers"]
    mvaus = [lay["params"] for lay in layers if lay["op_type"] == "MVAU"]
    assert [(p["IN_W"], p["IN_SIGNED"], p["W_W"]) for p in mvaus] == [(8, 1, 5), (6, 0, 5), (6, 1, 5)]
    assert [(p["NUM_T"], p["OUT_OFFSET"]) for p in mvaus[:2]] == [(63, 0), (63, -32)]
    _assert_widest_acc(tmp_path / "b", 18)


def _affine_requant(path: Path, channels: int = 64, classes: int = 10, seed: int = 1) -> Path:
    """x (signed 8 bits, scale 1/32) -> Mul(per-channel) -> Add -> Quant(6-bit
    unsigned) -> MatMul(7-bit weights, one scale): integer logits. The re-quantizer of the input
    is a standalone Thresholding layer: 8-bit signed in, 63 thresholds per channel, 6 bits out."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    x = g.quant("q_in", "x", 1 / 32, 8, signed=True)
    gain = rng.uniform(0.1, 1.5, size=(1, channels))  # positive: a falling one needs a MatMul before it
    x = g.node("Mul", "gain", [x, g.const("gain_c", gain)])
    x = g.node("Add", "bias", [x, g.const("bias_c", rng.normal(size=(1, channels)) * 3)])
    x = g.quant("q_act", x, 1 / 8, 6, signed=False)
    w = rng.integers(-63, 64, size=(channels, classes)) / 64
    x = g.node("MatMul", "fc", [x, g.quant("q_w", g.const("w", w), 1 / 64, 7, signed=True, narrow=True)])
    return g.save(path, "x", x, channels, classes)


def test_handmade_qonnx_thresholding_of_a_signed_8bit_input(tmp_path):
    """The standalone thresholding module on a signed 8-bit stream (all of -128..127 among the
    inputs), 6-bit output; FC 64 on 0..63 times -64..63: 64 * 63 * 64 = 258,048 < 2^18 -> ACC_W 19."""
    path = _affine_requant(tmp_path / "requant.onnx")
    ints = np.random.default_rng(6).integers(-128, 128, size=(FRAMES, 64))
    ints[0], ints[1] = 127, -128
    ints[2] = np.arange(-128, 128, 4)
    x = (ints / 32).astype(np.float32)
    r = _compile_and_simulate(path, tmp_path / "b", x, LOGITS, 20_000)
    _check_against_qonnx(path, tmp_path / "b", r, x, LOGITS)
    layers = json.loads((tmp_path / "b" / "rtl" / "design.json").read_text())["layers"]
    thr = [lay["params"] for lay in layers if lay["op_type"] == "Thresholding"]
    assert len(thr) == 1 and (thr[0]["IN_W"], thr[0]["IN_SIGNED"], thr[0]["NUM_T"], thr[0]["OUT_W"]) == (8, 1, 63, 6)
    _assert_widest_acc(tmp_path / "b", 19)


DOT_MW = 65_536


def _dot32(path: Path, w: np.ndarray, x_scale: float, w_scale: float) -> Path:
    """x (unsigned 8 bits) -> MatMul(8-bit weights, not narrow): the rows of the integer matrix
    ``w`` (MH, MW), times ``x_scale * w_scale``, are the outputs."""
    g = _Graph()
    x = g.quant("q_in", "x", x_scale, 8, signed=False)
    wq = g.quant("q_w", g.const("w", w.T * w_scale), w_scale, 8, signed=True)
    return g.save(path, "x", g.node("MatMul", "dot", [x, wq]), w.shape[1], w.shape[0])


def _check_dot32(
    tmp_path: Path, w: np.ndarray, ints: np.ndarray, x_scale: float, w_scale: float, qonnx_exact: bool
) -> None:
    from qnnflow.flows.ir.reference import load_qonnx, run_qonnx

    path = _dot32(tmp_path / "dot.onnx", w, x_scale, w_scale)
    x = (ints * x_scale).astype(np.float32)
    r = _compile_and_simulate(path, tmp_path / "b", x, LOGITS, 8192)
    want = ints @ w.T  # int64
    np.testing.assert_array_equal(_hw_ints(tmp_path / "b", r), want)
    layers = json.loads((tmp_path / "b" / "rtl" / "design.json").read_text())["layers"]
    params = next(lay["params"] for lay in layers if lay["op_type"] == "MVAU")
    assert (params["IN_W"], params["W_W"], params["ACC_W"], params["OUT_W"]) == (8, 8, 32, 32)
    assert params["SIMD"] > 8  # the dot products are summed in two registered halves
    ref = run_qonnx(load_qonnx(path), x).reshape(want.shape) / (x_scale * w_scale)
    if qonnx_exact:
        np.testing.assert_array_equal(ref, want)
    else:  # float32 partial sums near 2^31 are rounded to 2^7 .. 2^8
        np.testing.assert_allclose(ref, want, rtol=0, atol=1e-6 * 2**31)


def test_handmade_qonnx_dot_product_needs_all_32_accumulator_bits(tmp_path):
    """65,536 products of 0..255 and -128..127 range over -2,139,095,040 .. 2,122,383,360: ACC_W 32.
    A row of all -128 on an all-255 frame reaches the low end, -(2^31 - 2^23), which 31 bits do not
    hold. Power-of-two scales and these rows keep every partial sum of QONNX's float32 execution
    an exact integer, so QONNX is exact here as numpy int64 is."""
    rng = np.random.default_rng(4)
    w = np.empty((4, DOT_MW), dtype=np.int64)
    w[0], w[1] = -128, 64
    w[2, 0::2], w[2, 1::2] = 127, -128  # both extremes of the type, partial sums stay small
    w[3] = rng.integers(-128, 128, size=DOT_MW)
    ints = rng.integers(0, 256, size=(6, DOT_MW))
    ints[0], ints[1] = 255, 0
    assert (ints @ w.T)[0, 0] == -(2**31 - 2**23)
    _check_dot32(tmp_path, w, ints, 1 / 256, 1 / 128, qonnx_exact=True)


def test_handmade_qonnx_dot_product_32_bits_any_weights(tmp_path):
    """As above with scales 1/255 and 1/128, random weights and a row of all +127 (the high end,
    2,122,383,360): QONNX's float32 execution is only close there; the compiler verifies against a
    float64 one, which is exact only when qonnx's Quant outputs are not cast to float32 (they were:
    off by 127 at 2**31); the hardware equals numpy int64."""
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, size=(4, DOT_MW))
    w[0], w[1] = -128, 127
    ints = rng.integers(0, 256, size=(6, DOT_MW))
    ints[0], ints[1] = 255, 0
    _check_dot32(tmp_path, w, ints, 1 / 255, 1 / 128, qonnx_exact=False)
