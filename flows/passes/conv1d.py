"""1-D networks as 2-D ones of height 1: Conv1d / MaxPool1d / AvgPool1d on [N, C, L] become their
2-D forms on [N, C, 1, L], so they go through the sliding window (a 1 x K window on one row) and the
2-D pooling layers unchanged.

:class:`Conv1dTo2d` puts an Unsqueeze (axis 2) after the graph input, gives every 3-D data tensor
a unit height, and rewrites each node reading one:

- Conv, MaxPool, AveragePool: kernel, strides, dilations get a leading 1, pads [b, e] become
  [0, b, 0, e]; Conv weights (an initializer, or the constant input of the Quant that quantizes
  them) go from (O, I, K) to (O, I, 1, K), with their per-channel scale;
- elementwise ops, BatchNormalization, activations and quantizers: constant operands of rank 2 or
  more get the unit axis before their last one ([C, 1] -> [C, 1, 1]);
- Flatten (axis 1) and Reshape to 2-D: unchanged (C x 1 x L flattens as C x L);
- GlobalAveragePool / GlobalMaxPool: unchanged ([N, C, 1] becomes [N, C, 1, 1]).
Anything else reading a 3-D tensor is a ValueError naming the node. A 3-D graph output gets a
Squeeze back.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qnnflow.flows.ir.graph import Namer, add_const, redirect, where
from qonnx.core.modelwrapper import ModelWrapper

WINDOWED = ("Conv", "MaxPool", "AveragePool")
_CONST_OPERANDS = (
    "Mul", "Add", "Sub", "Div", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "Tanh",
    "HardSigmoid", "Quant", "BipolarQuant", "MultiThreshold", "Trunc", "Identity",
)  # fmt: skip
_UNCHANGED = ("GlobalAveragePool", "GlobalMaxPool")


def _is_1d(node) -> bool:
    return node.op_type in WINDOWED and any(a.name == "kernel_shape" and len(a.ints) == 1 for a in node.attribute)


def _unit_axis(v: np.ndarray) -> np.ndarray:
    """A constant broadcast against [N, C, L] -> the same against [N, C, 1, L]."""
    v = np.asarray(v)
    if v.ndim < 2:
        return v
    return v.reshape(v.shape[:-1] + (1,) + v.shape[-1:])


class Conv1dTo2d:
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        if not any(_is_1d(n) for n in model.graph.node):
            return model, False
        return _Rewrite(model).run(), True


class _Rewrite:
    def __init__(self, model: ModelWrapper):
        self.m = model
        self.namer = Namer(model)

    def run(self) -> ModelWrapper:
        m = self.m
        inp = m.graph.input[0].name
        shape = m.get_tensor_shape(inp)
        if shape is None or len(shape) != 3:
            first = next(n for n in m.graph.node if _is_1d(n))
            raise ValueError(
                f"{where(first)}: 1-D convolutions and pooling are lowered for a graph input of shape "
                f"[N, C, L]; the input has shape {shape}"
            )
        consts = {i.name for i in m.graph.initializer}
        rank3 = {
            t for n in m.graph.node for t in n.output if t and len(m.get_tensor_shape(t) or []) == 3 and t not in consts
        }
        rank3.add(inp)
        # the input, with a unit height
        lifted = self.namer(inp + "_2d")
        axes = add_const(m, self.namer, "unit_height", np.array([2], dtype=np.int64))
        for node in m.graph.node:
            for i, name in enumerate(node.input):
                if name == inp:
                    node.input[i] = lifted
        m.graph.node.insert(0, helper.make_node("Unsqueeze", [inp, axes], [lifted], name=self.namer("UnitHeight")))
        for node in list(m.graph.node)[1:]:
            data = [i for i in node.input if i in rank3 or i == lifted]
            if data:
                self._node(node, data)
        out = m.graph.output[0].name
        if out in rank3:
            inner = self.namer(out + "_2d")
            redirect(m, out, inner)
            sq = add_const(m, self.namer, "drop_height", np.array([2], dtype=np.int64))
            m.graph.node.append(helper.make_node("Squeeze", [inner, sq], [out], name=self.namer("DropHeight")))
        m.graph.ClearField("value_info")
        from qnnflow.flows.passes.tidy import InferShapesAndTypes, RemoveUnused

        model, _ = RemoveUnused().apply(m)  # the 3-D originals of the rewritten constants
        model, _ = InferShapesAndTypes().apply(model)
        return model

    def _node(self, node, data: list[str]) -> None:
        op = node.op_type
        if op in WINDOWED:
            self._windowed(node)
        elif op in _CONST_OPERANDS:
            for i, name in enumerate(node.input):
                if not name or name in data:
                    continue
                v = self.m.get_initializer(name)
                if v is not None and np.ndim(v) >= 2 and not (op == "MultiThreshold" and i == 1):
                    node.input[i] = add_const(self.m, self.namer, name + "_2d", _unit_axis(v))
        elif op == "Flatten":
            if next((a.i for a in node.attribute if a.name == "axis"), 1) != 1:
                raise ValueError(f"{where(node)}: after a 1-D convolution only Flatten with axis 1 is lowered")
        elif op == "Reshape":
            target = self.m.get_initializer(node.input[1])
            if target is None or len(target) != 2:
                raise ValueError(
                    f"{where(node)}: after a 1-D convolution only a Reshape to 2-D [N, features] is lowered"
                )
        elif op not in _UNCHANGED:
            raise ValueError(f"{where(node)}: {op} on the [N, C, L] tensor of a 1-D network is not lowered")

    def _windowed(self, node) -> None:
        for a in node.attribute:
            if a.name in ("kernel_shape", "strides", "dilations") and len(a.ints) == 1:
                a.ints[:] = [1, a.ints[0]]
            elif a.name == "pads" and len(a.ints) == 2:
                a.ints[:] = [0, a.ints[0], 0, a.ints[1]]
        if node.op_type == "Conv":
            self._weights(node)

    def _weights(self, node) -> None:
        m = self.m
        w = node.input[1]
        if m.get_initializer(w) is not None:
            node.input[1] = add_const(m, self.namer, w + "_2d", _conv_weight(m.get_initializer(w)))
            return
        q = m.find_producer(w)
        if q is None or q.op_type not in ("Quant", "BipolarQuant") or m.get_initializer(q.input[0]) is None:
            raise ValueError(
                f"{where(node)}: the weights of a 1-D convolution must be constant (or a Quant of a constant)"
            )
        q.input[0] = add_const(m, self.namer, q.input[0] + "_2d", _conv_weight(m.get_initializer(q.input[0])))
        for i in range(1, len(q.input)):
            v = m.get_initializer(q.input[i]) if q.input[i] else None
            if v is not None and np.ndim(v) == 3:  # a per-output-channel scale / zero point (O, 1, 1)
                q.input[i] = add_const(m, self.namer, q.input[i] + "_2d", np.asarray(v)[..., None])


def _conv_weight(w: np.ndarray) -> np.ndarray:
    """(O, I, K) -> (O, I, 1, K)."""
    w = np.asarray(w)
    return w[:, :, None, :]
