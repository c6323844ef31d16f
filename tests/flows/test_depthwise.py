"""Depthwise / separable convolutions (issue 11, item 9): a MobileNet-style separable CNN compiled
with every step verified, compared decision for decision with qonnx's execution of the original
file, and simulated stitched in Verilator; the VVAU layer's execute against a direct depthwise
convolution; its folding constraints; and the grouped convolutions that stay refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile import compile_model
from qnnflow.flows.execute import run_batched
from qnnflow.flows.reference import decisions, run_qonnx
from qnnflow.flows.steps import CompileOptions
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import Q
from tests.flows.helpers import quant as _quant
from tests.flows.helpers import tensor as _t


def _bn(rng, c: int, name: str, src: str, dst: str) -> tuple[list, list]:
    names = [f"{name}_{k}" for k in ("s", "b", "m", "v")]
    vals = [rng.uniform(0.5, 1.5, c), rng.normal(size=c) * 0.5, rng.normal(size=c) * 0.5, rng.uniform(0.5, 2, c)]
    node = helper.make_node("BatchNormalization", [src, *names], [dst], name=name, epsilon=1e-5)
    return [node], [_t(n, v) for n, v in zip(names, vals, strict=True)]


def separable_cnn(seed: int = 0, act: str = "relu", hw: int = 8, c: int = 4, classes: int = 5) -> ModelWrapper:
    """x [N, 3, H, W] -> Quant 8-bit signed -> Conv 3x3 (3 -> C, pad 1) -> BN -> Relu -> Quant 3-bit
    -> depthwise 3x3 (pad 1, per-channel weight scales, 4-bit) -> BN -> Relu -> Quant 2-bit
    -> pointwise 1x1 (C -> 2C) -> Relu -> Quant 3-bit -> depthwise 3x3 stride 2 (pad 1, 3-bit)
    -> BN -> Relu -> Quant 4-bit -> Flatten -> Gemm -> y (classes).

    ``act="bipolar"``: the first depthwise layer is binarized: sign-quantized (BipolarQuant) input
    and weights and a BipolarQuant after its BatchNorm (an XNOR-popcount VVAU); without padding,
    since a bipolar stream has no zero level to pad with."""
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
        _t("WF", wf - wf.mean(axis=1, keepdims=True)),
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
            _quant("r0", "q0", "a1", "b3", 0),
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
        _quant("D2", "D2q", "ds2", "b3", 1, narrow=1),
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
