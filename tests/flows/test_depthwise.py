"""Depthwise / separable convolutions (issue 11, item 9): a MobileNet-style separable CNN compiled
with every step verified, compared decision for decision with qonnx's execution of the original
file, and simulated stitched in Verilator; the VVAU layer's execute against a direct depthwise
convolution; its folding constraints; and the grouped convolutions that stay refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions
from qnnflow.flows.ir.execute import run_batched
from qnnflow.flows.ir.reference import decisions, run_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import Q, assert_latency_estimated
from tests.flows.helpers import quant as _quant
from tests.flows.helpers import tensor as _t


def _bn(rng, c: int, name: str, src: str, dst: str) -> tuple[list, list]:
    names = [f"{name}_{k}" for k in ("s", "b", "m", "v")]
    vals = [rng.uniform(0.5, 1.5, c), rng.normal(size=c) * 0.5, rng.normal(size=c) * 0.5, rng.uniform(0.5, 2, c)]
    node = helper.make_node("BatchNormalization", [src, *names], [dst], name=name, epsilon=1e-5)
    return [node], [_t(n, v) for n, v in zip(names, vals, strict=True)]


def separable_cnn(seed: int = 5, act: str = "relu", hw: int = 8, c: int = 4, classes: int = 5) -> ModelWrapper:
    """x [N, 3, H, W] -> Quant 8-bit signed -> Conv 3x3 (3 -> C, pad 1) -> BN -> Relu -> Quant 3-bit
    (per-channel scales) -> depthwise 3x3 (pad 1, per-channel weight scales, 4-bit) -> BN -> Relu -> Quant 2-bit
    -> pointwise 1x1 (C -> 2C) -> Relu -> Quant 3-bit -> depthwise 3x3 stride 2 (pad 1, 3-bit)
    -> BN -> Relu -> Quant 4-bit -> Flatten -> Gemm -> y (classes).

    ``act="bipolar"``: the first depthwise layer is binarized: sign-quantized (BipolarQuant) input
    and weights and a BipolarQuant after its BatchNorm (an XNOR-popcount VVAU); without padding,
    since a bipolar stream has no zero level to pad with. ``act="ternary"``: the stride-2 depthwise
    layer's weights are ternary (2-bit narrow: -1, 0, +1)."""
    rng = np.random.default_rng(seed)
    c2 = 2 * c
    bipolar = act == "bipolar"
    oh = (hw - 2 * bipolar + 2 - 3) // 2 + 1
    wf = rng.normal(size=(classes, c2 * oh * oh)) * 0.3
    inits = [
        _t("zero", 0.0), _t("b8", 8), _t("b4", 4), _t("b3", 3), _t("b2", 2), _t("one", 1.0),
        _t("xs", 1 / 64), _t("ws", 1 / 8), _t("a1", 0.25), _t("a2", 0.5), _t("a3", 0.25), _t("a4", 0.125),
        _t("W0", rng.normal(size=(c, 3, 3, 3)) * 0.5), _t("D1", rng.normal(size=(c, 1, 3, 3))),
        _t("ds1", rng.uniform(0.1, 0.3, (c, 1, 1, 1))), _t("P1", rng.normal(size=(c2, c, 1, 1)) * 0.5),
        _t("D2", rng.normal(size=(c2, 1, 3, 3))), _t("ds2", rng.uniform(0.1, 0.3, (c2, 1, 1, 1))),
        _t("WF", wf - wf.mean(axis=1, keepdims=True)), _t("a1pc", np.linspace(0.2, 0.35, c).reshape(c, 1, 1)),
        _t("ds2t", np.linspace(0.6, 1.0, c2).reshape(c2, 1, 1, 1)),  # ternary: about a third zeros
    ]  # fmt: skip
    nodes = [
        _quant("x", "xq", "xs", "b8", 1),
        _quant("W0", "W0q", "ws", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xq", "W0q"], ["c0"], name="Conv_0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    more, extra = _bn(rng, c, "BN_0", "c0", "n0")
    nodes += more
    inits += extra
    if bipolar:
        nodes += [
            helper.make_node("BipolarQuant", ["n0", "one"], ["q0"], domain=Q, name="BipolarQuant_0"),
            helper.make_node("BipolarQuant", ["D1", "ds1"], ["D1q"], domain=Q, name="BipolarQuant_D1"),
        ]
    else:
        nodes += [
            helper.make_node("Relu", ["n0"], ["r0"], name="Relu_0"),
            _quant("r0", "q0", "a1pc", "b3", 0),  # per-channel scales: a depthwise layer keeps them apart
            _quant("D1", "D1q", "ds1", "b4", 1, narrow=1),
        ]
    pads = [0, 0, 0, 0] if bipolar else [1, 1, 1, 1]
    nodes.append(
        helper.make_node("Conv", ["q0", "D1q"], ["d1"], name="Depthwise_0", kernel_shape=[3, 3], pads=pads, group=c)
    )
    more, extra = _bn(rng, c, "BN_1", "d1", "n1")
    nodes += more
    inits += extra
    if bipolar:
        nodes.append(helper.make_node("BipolarQuant", ["n1", "one"], ["q1"], domain=Q, name="BipolarQuant_1"))
    else:
        nodes += [helper.make_node("Relu", ["n1"], ["r1"], name="Relu_1"), _quant("r1", "q1", "a2", "b2", 0)]
    nodes += [
        _quant("P1", "P1q", "ws", "b3", 1, narrow=1),
        helper.make_node("Conv", ["q1", "P1q"], ["p1"], name="Pointwise_0", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["p1"], ["r2"], name="Relu_2"),
        _quant("r2", "q2", "a3", "b3", 0),
        _quant("D2", "D2q", "ds2t", "b2", 1, narrow=1)
        if act == "ternary"
        else _quant("D2", "D2q", "ds2", "b3", 1, narrow=1),
        helper.make_node(
            "Conv", ["q2", "D2q"], ["d2"], name="Depthwise_1", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
            strides=[2, 2], group=c2,
        ),
    ]  # fmt: skip
    more, extra = _bn(rng, c2, "BN_2", "d2", "n2")
    nodes += more + [helper.make_node("Relu", ["n2"], ["r3"], name="Relu_3"), _quant("r3", "q3", "a4", "b4", 0)]
    inits += extra
    nodes += [
        helper.make_node("Flatten", ["q3"], ["f"], name="Flatten_0"),
        _quant("WF", "WFq", "ws", "b4", 1, narrow=1),
        helper.make_node("Gemm", ["f", "WFq"], ["y"], name="Gemm_0", transB=1),
    ]
    g = helper.make_graph(
        nodes, "separable", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, classes])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


def _inputs(n: int, hw: int = 8, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).integers(-128, 128, size=(n, 3, hw, hw)) / 64).astype(np.float32)


def _compile(tmp_path: Path, act: str, x: np.ndarray, folding: Path | None = None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"sep_{act}.onnx"
    separable_cnn(act=act).save(str(path))
    opts = CompileOptions(target_cycles=1000) if folding is None else CompileOptions(folding=folding)
    return path, compile_model(path, tmp_path / f"b_{act}", inputs=x, opts=opts, verbose=False)


def _vvaus(dataflow: Path) -> list:
    from qnnflow.flows.ir.layers import get_layer

    return [get_layer(n) for n in ModelWrapper(str(dataflow)).graph.node if n.op_type == "VVAU"]


@pytest.mark.parametrize("act", ["relu", "bipolar", "ternary"])
def test_separable_cnn_compiles_exactly(tmp_path, act):
    """Every step verified, and the dataflow graph's decisions equal qonnx's on the original file."""
    x = _inputs(300)
    path, r = _compile(tmp_path, act, x)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    got = run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x))
    want = decisions(run_qonnx(ModelWrapper(str(path)), x))
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) >= 3
    ops = [layer["op_type"] for layer in r.estimates["layers"]]
    assert ops.count("VVAU") == 2 and ops.count("MVAU") == 3 and ops.count("Thresholding") == 0
    dw0, dw1 = _vvaus(r.dataflow)
    # both took their activation; the binarized one counts agreeing signs
    assert not dw0.get("noActivation") and not dw1.get("noActivation") and len(dw0.node.input) == 3
    xnor_out = (1, "BIPOLAR") if act == "bipolar" else (0, "UINT2")
    assert (dw0.get("binaryXnorMode"), dw0.get("outputDataType")) == xnor_out
    out_hw = [3, 3] if act == "bipolar" else [4, 4]  # stride 2 on 8 x 8 (padded), or 6 x 6 (bipolar, unpadded)
    assert (dw1.get("Channels"), list(dw1.get("Kernel")), list(dw1.get("vectors"))) == (8, [3, 3], out_hw)
    assert dw1.get("weightDataType") == ("TERNARY" if act == "ternary" else "INT3")


@pytest.mark.rtl
@pytest.mark.parametrize(
    "act",
    # make test simulates the ReLU network; the bipolar and ternary ones (compiled exactly above; their
    # activations' RTL is simulated by the zoo's w1 / ternary presets) join make test-all (30 s each)
    ["relu", pytest.param("bipolar", marks=pytest.mark.slow), pytest.param("ternary", marks=pytest.mark.slow)],
)
def test_separable_cnn_simulates_bit_exact(tmp_path, act):
    """Stitched in Verilator with the first depthwise layer at PE = 1 (the bottleneck: C * 9 cycles
    per output pixel) and the second at PE = C, SIMD = 3: no mismatch, and the measured cycles per
    frame are the estimate."""
    import json

    from qnnflow.sim.stitch import simulate

    x = _inputs(300)
    _, r = _compile(tmp_path / "first", act, x)
    fold = json.loads(Path(r.dataflow).with_name("folding.json").read_text())
    dws = [name for name, v in fold["layers"].items() if v["op_type"] == "VVAU"]
    fold["layers"][dws[0]].update(PE=1, SIMD=1)
    fold["layers"][dws[1]].update(PE=8, SIMD=3)
    (tmp_path / "folding.json").write_text(json.dumps(fold))
    path, r = _compile(tmp_path, act, x, folding=tmp_path / "folding.json")
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    pixels = 6 * 6 if act == "bipolar" else 8 * 8
    bottleneck = 4 * 9 * pixels  # C / PE channel folds x 9 window positions per output pixel
    assert r.estimates["ii_cycles"] == bottleneck
    sim = simulate(tmp_path / f"b_{act}", inputs=x[:100], log=lambda _m: None)
    assert sim["mismatches"] == 0
    assert sim["cycles_per_frame_estimated"] == bottleneck
    assert sim["cycles_per_frame_measured"] == bottleneck
    assert_latency_estimated(sim)
    hw = decisions(np.load(Path(sim["results_dir"]) / "outputs.npy"))
    np.testing.assert_array_equal(hw, decisions(run_qonnx(ModelWrapper(str(path)), x[:100])))


def _direct_depthwise(img: np.ndarray, w: np.ndarray, stride: tuple[int, int], pad: tuple[int, int]) -> np.ndarray:
    """Depthwise convolution by loops: img (N, H, W, C), w (C, KH, KW), zero padding -> (N, OH, OW, C)."""
    n, h, wd, c = img.shape
    _, kh, kw = w.shape
    oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((n, oh, ow, c), dtype=np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    acc = 0
                    for ky in range(kh):
                        for kx in range(kw):
                            y, x = i * stride[0] + ky - pad[0], j * stride[1] + kx - pad[1]
                            if 0 <= y < h and 0 <= x < wd:
                                acc += int(img[b, y, x, ch]) * int(w[ch, ky, kx])
                    out[b, i, j, ch] = acc
    return out


def _window_then_vvau(img, w, thr, kernel, stride, pad, pe, simd, idt, wdt, odt, act_val=0, xnor=0):
    from qnnflow.flows.ir.layers import VVAU, SlidingWindow

    n, h, wd, c = img.shape
    kh, kw = kernel
    oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (wd + 2 * pad[1] - kw) // stride[1] + 1
    swg = SlidingWindow(SlidingWindow.make(
        "swg", ["x"], ["win"], IFMChannels=c, IFMDim=[h, wd], OFMDim=[oh, ow], ConvKernelDim=list(kernel),
        Stride=list(stride), Pad=list(pad), inputDataType=idt,
    ))  # fmt: skip
    ins = ["win", "w"] + (["t"] if thr is not None else [])
    vvau = VVAU(VVAU.make(
        "dw", ins, ["y"], Channels=c, Kernel=list(kernel), PE=pe, SIMD=simd, vectors=[oh, ow],
        inputDataType=idt, weightDataType=wdt, outputDataType=odt, accDataType="INT16", ActVal=act_val,
        noActivation=int(thr is None), binaryXnorMode=xnor,
    ))  # fmt: skip
    vvau.check()
    (win,) = swg.execute([img.astype(np.float64)])
    args = [win, w.reshape(c, kh * kw).astype(np.float64)] + ([thr] if thr is not None else [])
    return vvau, vvau.execute(args)[0]


@pytest.mark.parametrize(
    "kernel, stride, pad, pe, simd",
    [
        ((3, 3), (1, 1), (1, 1), 2, 1),
        ((3, 3), (2, 2), (1, 1), 6, 3),
        ((1, 5), (1, 2), (0, 2), 3, 1),
        ((2, 2), (1, 1), (0, 0), 6, 4),
    ],
)
def test_vvau_execute_is_a_depthwise_convolution(kernel, stride, pad, pe, simd):
    """SlidingWindow then VVAU equals a depthwise convolution computed by loops: the accumulators
    (no activation), and with thresholds the count of thresholds at or below each, plus ActVal."""
    rng = np.random.default_rng(sum(kernel) + pe)
    c = 6
    img = rng.integers(-8, 8, size=(2, 5, 7, c))
    w = rng.integers(-3, 4, size=(c, *kernel))
    want = _direct_depthwise(img, w, stride, pad)
    vvau, acc = _window_then_vvau(img, w, None, kernel, stride, pad, pe, simd, "INT4", "INT3", "INT12")
    np.testing.assert_array_equal(acc.astype(np.int64), want)
    assert vvau.exp_cycles() == (c // pe) * (kernel[0] * kernel[1] // simd) * want.shape[1] * want.shape[2]
    assert (vvau.in_width, vvau.out_width) == (pe * simd * 4, pe * 12)
    thr = np.sort(rng.integers(-40, 40, size=(c, 3)), axis=1).astype(np.float64)
    _, act = _window_then_vvau(img, w, thr, kernel, stride, pad, pe, simd, "INT4", "INT3", "INT3", act_val=-1)
    count = (thr[None, None, None, :, :] <= want[..., None]).sum(-1) - 1
    np.testing.assert_array_equal(act.astype(np.int64), count)


def test_vvau_execute_xnor_counts_agreeing_signs():
    """Bipolar input and weights with binaryXnorMode: per channel the number of window positions
    whose signs agree, thresholded; a bipolar output maps the count 0 / 1 to -1 / +1."""
    rng = np.random.default_rng(3)
    c = 4
    img = rng.choice([-1, 1], size=(3, 4, 4, c))
    w = rng.choice([-1, 1], size=(c, 3, 3))
    agree = np.zeros((3, 2, 2, c), dtype=np.int64)
    for i in range(2):
        for j in range(2):
            agree[:, i, j, :] = (img[:, i : i + 3, j : j + 3, :] == w.transpose(1, 2, 0)[None]).sum(axis=(1, 2))
    _, got = _window_then_vvau(
        img, w, np.full((c, 1), 5.0), (3, 3), (1, 1), (0, 0), 4, 1, "BIPOLAR", "BIPOLAR", "BIPOLAR", xnor=1
    )
    np.testing.assert_array_equal(got.astype(np.int64), np.where(agree >= 5, 1, -1))


def _vvau_layer(pe: int, simd: int, channels: int = 8, kernel=(3, 3)):
    from qnnflow.flows.ir.layers import VVAU

    return VVAU(VVAU.make(
        "Depthwise_0", ["win", "w"], ["y"], Channels=channels, Kernel=list(kernel), PE=pe, SIMD=simd,
        inputDataType="UINT2", weightDataType="INT3", outputDataType="INT8", accDataType="INT8", noActivation=1,
    ))  # fmt: skip


@pytest.mark.parametrize(
    "pe, simd, message",
    [
        (3, 1, r"Depthwise_0 \(VVAU\): PE must divide Channels \(8\), not 3"),
        (8, 2, r"Depthwise_0 \(VVAU\): SIMD must divide KH\*KW \(9\), not 2"),
        (4, 3, r"Depthwise_0 \(VVAU\): SIMD > 1 needs PE = Channels \(8\), not PE = 4 with SIMD = 3 \(window "
               r"positions of the same channels are adjacent in the \(ky, kx, c\) stream only then\)"),
        (0, 1, r"Depthwise_0 \(VVAU\): PE must divide Channels \(8\), not 0"),
    ],
)  # fmt: skip
def test_vvau_folding_errors(pe, simd, message):
    with pytest.raises(ValueError, match=message):
        _vvau_layer(pe, simd).check()


def test_vvau_folding_options_and_balance():
    """Every folding the folder tries is legal, the fastest is PE = Channels, SIMD = KH*KW, and
    folding for a target picks the cheapest that meets it."""
    from qnnflow.flows.compile import folding

    lay = _vvau_layer(1, 1, channels=8, kernel=(3, 3))
    opts = folding._options(lay)
    for o in opts:
        folding._set(lay, o)
        lay.check()
    assert opts[-1] == {"PE": 8, "SIMD": 9} and opts[0] == {"PE": 1, "SIMD": 1}
    assert folding.min_cycles(lay) == 1
    assert folding._fold_layer(lay, 3) and lay.folding() == {"PE": 8, "SIMD": 3}
    assert folding._fold_layer(lay, 18) and lay.folding() == {"PE": 4, "SIMD": 1}


def _grouped_model(group: int, cout: int, cin: int = 4) -> ModelWrapper:
    rng = np.random.default_rng(0)
    inits = [_t("zero", 0.0), _t("b4", 4), _t("s", 1 / 8), _t("W", rng.normal(size=(cout, cin // group, 3, 3)))]
    nodes = [
        _quant("x", "xq", "s", "b4", 0),
        _quant("W", "Wq", "s", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xq", "Wq"], ["y"], name="Grouped_0", kernel_shape=[3, 3], group=group),
    ]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, 4, 4])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


@pytest.mark.parametrize(
    "group, cout, message",
    [
        (4, 8, r"Grouped_0 \(Conv\): depthwise convolution with depth multiplier 2 \(group 4, 8 output channels\); "
               r"lowered is depth multiplier 1 \(group = input channels = output channels\)"),
        (2, 4, r"Grouped_0 \(Conv\): grouped convolution, group 2 of 2 input channels each; lowered are group 1 "
               r"and depthwise \(group = input channels = output channels\)"),
    ],
)  # fmt: skip
def test_other_grouped_convolutions_are_refused(tmp_path, group, cout, message):
    path = tmp_path / "g.onnx"
    _grouped_model(group, cout).save(str(path))
    with pytest.raises(ValueError, match=message):
        compile_model(path, tmp_path / "b", inputs=np.zeros((2, 4, 6, 6), np.float32), verbose=False)


def depthwise1d(length: int = 32, seed: int = 0) -> ModelWrapper:
    """x [N, 2, L] -> Quant 8-bit -> Conv1d(2 -> 6, k 3, pad 1) -> Relu -> Quant 3-bit -> depthwise
    Conv1d (k 5, pad 1, stride 2, per-channel scales) -> Relu -> Quant 3-bit -> Flatten -> Gemm (4):
    through the Conv1d -> 2-D rewrite, a 1 x 5 window on one row."""
    rng = np.random.default_rng(seed)
    l2 = (length + 2 - 5) // 2 + 1
    wf = rng.normal(size=(4, 6 * l2))
    inits = [
        _t("zero", 0.0), _t("b8", 8), _t("b3", 3), _t("b4", 4), _t("xs", 1 / 64), _t("ws", 1 / 8), _t("a", 0.25),
        _t("W1", rng.normal(size=(6, 2, 3)) * 0.5), _t("D", rng.normal(size=(6, 1, 5))),
        _t("ds", rng.uniform(0.1, 0.3, (6, 1, 1))), _t("WF", wf - wf.mean(1, keepdims=True)),
    ]  # fmt: skip
    nodes = [
        _quant("x", "xq", "xs", "b8", 1),
        _quant("W1", "W1q", "ws", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xq", "W1q"], ["c1"], name="Conv1d_0", kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="Relu_0"),
        _quant("r1", "q1", "a", "b3", 0),
        _quant("D", "Dq", "ds", "b4", 1, narrow=1),
        helper.make_node(
            "Conv", ["q1", "Dq"], ["d"], name="Depthwise1d_0", kernel_shape=[5], pads=[1, 1], strides=[2], group=6
        ),
        helper.make_node("Relu", ["d"], ["r2"], name="Relu_1"),
        _quant("r2", "q2", "a", "b3", 0),
        helper.make_node("Flatten", ["q2"], ["f"], name="Flatten_0"),
        _quant("WF", "WFq", "ws", "b4", 1, narrow=1),
        helper.make_node("Gemm", ["f", "WFq"], ["y"], name="Gemm_0", transB=1),
    ]
    g = helper.make_graph(
        nodes, "dw1d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, length])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


def _dataflow_or_rtl_decides(r, x: np.ndarray, want: np.ndarray, build: Path, rtl: bool) -> None:
    """The dataflow graph's decisions on ``x`` equal ``want``; with ``rtl``, the stitched simulation's
    on the first 60 do, with 0 mismatches and the estimated cycles per frame measured."""
    if not rtl:
        np.testing.assert_array_equal(run_batched(ModelWrapper(str(r.dataflow)), x).reshape(len(x)), want)
        return
    from qnnflow.sim.stitch import simulate

    sim = simulate(build, inputs=x[:60], log=lambda _m: None)
    assert sim["mismatches"] == 0
    assert sim["cycles_per_frame_measured"] == sim["cycles_per_frame_estimated"] == r.estimates["ii_cycles"]
    assert_latency_estimated(sim)
    np.testing.assert_array_equal(decisions(np.load(Path(sim["results_dir"]) / "outputs.npy")), want[:60])


@pytest.mark.parametrize("rtl", [False, pytest.param(True, marks=pytest.mark.rtl)], ids=["graph", "rtl"])
def test_depthwise_conv1d(tmp_path, rtl):
    """A depthwise Conv1d becomes a VVAU on a 1 x 5 window; decisions as qonnx's, in the graph and
    (``rtl``) in Verilator with the measured cycles per frame as estimated."""
    path = tmp_path / "dw1d.onnx"
    depthwise1d().save(str(path))
    x = (np.random.default_rng(1).integers(-128, 128, size=(200, 2, 32)) / 64).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=500), verbose=False)
    want = decisions(run_qonnx(ModelWrapper(str(path)), x))
    assert len(np.unique(want)) >= 3
    (dw,) = _vvaus(r.dataflow)
    assert (list(dw.get("Kernel")), list(dw.get("vectors")), dw.get("Channels")) == ([1, 5], [1, 15], 6)
    _dataflow_or_rtl_decides(r, x, want, tmp_path / "b", rtl)


def depthwise_logits(seed: int = 0) -> ModelWrapper:
    """x [N, 4, 6, 6] -> Quant 3-bit unsigned -> depthwise 3x3 (4-bit, one weight scale) -> Flatten
    -> Gemm (3): the depthwise accumulators go straight into the classifier, so the VVAU keeps no
    activation (its output is the accumulator)."""
    rng = np.random.default_rng(seed)
    wf = rng.normal(size=(3, 4 * 16))
    inits = [
        _t("zero", 0.0), _t("b3", 3), _t("b4", 4), _t("xs", 1 / 4), _t("ws", 1 / 8),
        _t("D", rng.normal(size=(4, 1, 3, 3))), _t("WF", wf - wf.mean(1, keepdims=True)),
    ]  # fmt: skip
    nodes = [
        _quant("x", "xq", "xs", "b3", 0),
        _quant("D", "Dq", "ws", "b4", 1, narrow=1),
        helper.make_node("Conv", ["xq", "Dq"], ["d"], name="Depthwise_0", kernel_shape=[3, 3], group=4),
        helper.make_node("Flatten", ["d"], ["f"], name="Flatten_0"),
        _quant("WF", "WFq", "ws", "b4", 1, narrow=1),
        helper.make_node("Gemm", ["f", "WFq"], ["y"], name="Gemm_0", transB=1),
    ]
    g = helper.make_graph(
        nodes, "dwlogits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], initializer=inits,
    )  # fmt: skip
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]))


@pytest.mark.parametrize("rtl", [False, pytest.param(True, marks=pytest.mark.rtl)], ids=["graph", "rtl"])
def test_depthwise_without_activation(tmp_path, rtl):
    path = tmp_path / "dwl.onnx"
    depthwise_logits().save(str(path))
    x = (np.random.default_rng(2).integers(0, 8, size=(200, 4, 6, 6)) / 4).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=300), verbose=False)
    want = decisions(run_qonnx(ModelWrapper(str(path)), x))
    assert len(np.unique(want)) == 3
    (dw,) = _vvaus(r.dataflow)
    assert dw.get("noActivation") == 1 and len(dw.node.input) == 2
    _dataflow_or_rtl_decides(r, x, want, tmp_path / "b", rtl)


@pytest.mark.parametrize("model", ["relu", "bipolar", "logits"])
def test_vvau_params_match_codegen(tmp_path, model):
    """The parameters the resource estimate assumes for each layer (flows/compile/resources.py
    layer_params) are the ones codegen gives hw/vvau.sv, with and without activation, XNOR too."""
    from qnnflow.flows.codegen import generate
    from qnnflow.flows.compile.resources import layer_params
    from qnnflow.flows.ir.layers import get_layer

    if model == "logits":
        path = tmp_path / "m.onnx"
        depthwise_logits().save(str(path))
        x = (np.random.default_rng(2).integers(0, 8, size=(20, 4, 6, 6)) / 4).astype(np.float32)
        r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=300), verbose=False)
    else:
        _, r = _compile(tmp_path, model, _inputs(20))
    m = ModelWrapper(str(r.dataflow))
    nodes = {n.name: n for n in m.graph.node}
    design = generate(m, tmp_path / "rtl")
    vvau = [lay for lay in design.layers if lay["op_type"] == "VVAU"]
    assert vvau and all(lay["module"] == "vvau" for lay in vvau)
    for lay in design.layers:
        module, params = layer_params(get_layer(nodes[lay["name"]]))
        assert module == lay["module"], lay["name"]
        differing = {k: (v, lay["params"].get(k)) for k, v in params.items() if lay["params"].get(k) != v}
        assert not differing, f"{lay['name']}: estimate assumes / codegen gives {differing}"
