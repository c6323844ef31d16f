"""Stride-1 transposed convolutions rewritten as convolutions with the flipped, channel-swapped kernel
(flows/passes/conv_transpose.py): equal to the ConvTranspose as executed by QONNX / onnxruntime, and
refused with a message where the rewrite does not apply."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.importer import check_supported
from qnnflow.flows.ir.reference import run_qonnx
from qnnflow.flows.passes.conv_transpose import LowerConvTranspose
from qonnx.core.modelwrapper import ModelWrapper

from tests.flows.helpers import quant, tensor


def _model(w: np.ndarray, pads, quantized: bool, side: int = 5, **attrs) -> ModelWrapper:
    """x (1, C_in, side, side) -> ConvTranspose(w [, Quant of w]) -> y."""
    cin, cout, kh, kw = w.shape
    inits = [tensor("W", w)]
    nodes = []
    weight = "W"
    if quantized:
        inits += [tensor("s", 0.5), tensor("zero", 0.0), tensor("bits", 3.0)]
        nodes.append(quant("W", "Wq", "s", "bits", signed=1, narrow=1))
        weight = "Wq"
    out_h, out_w = side + kh - 1 - pads[0] - pads[2], side + kw - 1 - pads[1] - pads[3]
    nodes.append(
        helper.make_node(
            "ConvTranspose", ["x", weight], ["y"], name="ConvTranspose_0", kernel_shape=[kh, kw], pads=list(pads),
            **attrs,
        )
    )  # fmt: skip
    graph = helper.make_graph(
        nodes, "ct",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out_h, out_w])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ModelWrapper(model)


@pytest.mark.parametrize("quantized", [False, True], ids=["constant", "quant"])
@pytest.mark.parametrize("pads, kernel", [((1, 1, 1, 1), 3), ((0, 0, 0, 0), 3), ((2, 1, 0, 2), 3), ((0, 0, 0, 0), 2)])
def test_conv_transpose_as_conv_is_exact(quantized, pads, kernel):
    rng = np.random.default_rng(kernel + sum(pads))
    w = rng.integers(-3, 4, size=(3, 5, kernel, kernel)).astype(np.float32)
    x = rng.integers(0, 8, size=(20, 3, 5, 5)).astype(np.float32)
    model = _model(w, pads, quantized)
    want = run_qonnx(model, x)
    lowered, changed = LowerConvTranspose().apply(ModelWrapper(model.model.__deepcopy__()))
    assert changed
    assert [n.op_type for n in lowered.graph.node if n.op_type in ("Conv", "ConvTranspose")] == ["Conv"]
    got = run_qonnx(lowered, x)
    assert got.shape == want.shape
    assert np.array_equal(got, want)  # integer-valued: exact
    # and against a direct evaluation of the definition: y[o, i+a, j+b] += x[c, i, j] w[c, o, a, b], cropped
    full = np.zeros((20, 5, 5 + kernel - 1, 5 + kernel - 1))
    wq = np.clip(np.round(w / 0.5), -3, 3) * 0.5 if quantized else w
    for a in range(kernel):
        for b in range(kernel):
            full[:, :, a : a + 5, b : b + 5] += np.einsum("nchw,co->nohw", x, wq[:, :, a, b])
    t, left, bottom, right = pads
    direct = full[:, :, t : full.shape[2] - bottom, left : full.shape[3] - right]
    assert np.array_equal(got, direct)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({"strides": [2, 2]}, r"transposed convolution with stride \[2, 2\] \(only \[1, 1\] is lowered\)"),
        (
            {"output_padding": [1, 1], "strides": [1, 1]},
            r"transposed convolution with output padding \[1, 1\] \(only \[0, 0\] is lowered\)",
        ),
        ({"dilations": [2, 2]}, r"transposed convolution with dilation \[2, 2\]"),
    ],
)
def test_unsupported_conv_transpose_is_named(attrs, message):
    model = _model(np.ones((2, 2, 3, 3), dtype=np.float32), (0, 0, 0, 0), False, **attrs)
    with pytest.raises(ValueError, match=r"ConvTranspose_0 \(ConvTranspose\): " + message):
        check_supported(model)


def test_per_channel_weight_scale_is_refused():
    model = _model(np.ones((2, 2, 3, 3), dtype=np.float32), (1, 1, 1, 1), True)
    model.set_initializer("s", np.full((2, 1, 1, 1), 0.5, dtype=np.float32))
    message = (
        r"ConvTranspose_0 \(ConvTranspose\): the weight quantizer .* must have per-tensor \(scalar\) operands to "
        r"commute with the kernel flip, found 's' of shape \[2, 1, 1, 1\]"
    )
    with pytest.raises(ValueError, match=message):
        LowerConvTranspose().apply(model)
