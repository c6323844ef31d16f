"""Average pooling as a convolution the rest of the flow already lowers.

Brevitas' ``TruncAvgPool2d`` exports ``Quant -> AveragePool -> Trunc``: the mean of a window of a
quantized activation, re-quantized. :class:`LowerAveragePool` rewrites ``AveragePool`` /
``GlobalAveragePool`` into ``Conv`` with integer weights (1 where the output channel is the input
channel, else 0) followed by ``Mul(1 / window size)``. The streamlining then sees an integer
window sum whose tail (the Mul, the Trunc) becomes thresholds, and the convolution becomes a
sliding window and an MVAU like any other.

The MVAU does C times the work a dedicated pooling unit would (each output channel sums all
k*k*C window elements, C - 1 of every C weights being 0); for the small pools of the zoo that is
cheap, and it keeps every hardware layer one of the verified library modules.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qnnflow.flows.ir.graph import Namer, add_const, where
from qonnx.core.modelwrapper import ModelWrapper

POOLS = ("AveragePool", "GlobalAveragePool")


class LowerAveragePool:
    """AveragePool / GlobalAveragePool (NCHW, no ceil mode, no dilation; padding only with
    ``count_include_pad``) -> Conv with 0/1 weights + Mul. ValueError naming the node otherwise."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        pools = [n for n in model.graph.node if n.op_type in POOLS]
        if not pools:
            return model, False
        namer = Namer(model)
        for node in pools:
            kh, kw, strides, pads = self._window(model, node)
            c = int(model.get_tensor_shape(node.input[0])[1])
            w = np.zeros((c, c, kh, kw), dtype=np.float32)
            w[np.arange(c), np.arange(c)] = 1.0
            w_name = add_const(model, namer, node.name + "_ones", w)
            inv = add_const(model, namer, node.name + "_inv_count", np.array(1.0 / (kh * kw), dtype=np.float32))
            summed = namer(node.output[0] + "_sum")
            conv = helper.make_node(
                "Conv",
                [node.input[0], w_name],
                [summed],
                name=namer(node.name + "_sum"),
                kernel_shape=[kh, kw],
                strides=strides,
                pads=pads,
                group=1,
            )
            mul = helper.make_node("Mul", [summed, inv], [node.output[0]], name=namer(node.name + "_mean"))
            idx = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            model.graph.node.insert(idx, mul)
            model.graph.node.insert(idx, conv)
        return model, True

    @staticmethod
    def _window(model: ModelWrapper, node) -> tuple[int, int, list[int], list[int]]:
        what = where(node)
        shape = model.get_tensor_shape(node.input[0])
        if shape is None or len(shape) != 4:
            raise ValueError(f"{what}: expected a 4-D NCHW input, found shape {shape}")
        if node.op_type == "GlobalAveragePool":
            return int(shape[2]), int(shape[3]), [1, 1], [0, 0, 0, 0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID"):
            raise ValueError(f"{what}: auto_pad {auto_pad} is not supported; expected explicit pads")
        if attrs.get("ceil_mode", 0):
            raise ValueError(f"{what}: ceil_mode=1 (partial windows) is not supported")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise ValueError(f"{what}: dilated pooling is not supported")
        kh, kw = (int(k) for k in attrs["kernel_shape"])
        strides = [int(s) for s in attrs.get("strides", [1, 1])]
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        if any(pads) and not attrs.get("count_include_pad", 0):
            raise ValueError(
                f"{what}: padding with count_include_pad=0 divides border windows by fewer than "
                f"{kh * kw} elements; only count_include_pad=1 (or no padding) is supported"
            )
        return kh, kw, strides, pads
