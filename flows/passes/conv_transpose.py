"""Transposed convolutions as the convolutions the rest of the flow lowers.

A stride-1 ``ConvTranspose`` with weight ``W`` (C_in, C_out, kh, kw) and pads ``p`` equals a ``Conv``
with the flipped, channel-swapped kernel ``W' = W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]``
(C_out, C_in, kh, kw) and pads ``k - 1 - p``: every output element sums the same products, only
their order changes, and the integer sums are exact. The symmetric residual blocks of
:mod:`qnnflow.models.symmetric` use one quantized weight tensor ``Q_w(K)`` for a ``Conv`` and a
``ConvTranspose``; after this pass the graph holds ``Q_w(K)`` and ``Q_w(K')``, and each becomes an
MVAU with its own weight memory (the MVAU streams its weights in the order of its own folding; the
two uses read K in two different orders).

The weight must be a constant or a per-tensor ``Quant`` / ``BipolarQuant`` of one: an elementwise
quantizer with one scale commutes with the permutation, so ``Quant(W)'`` = ``Quant(W')`` exactly. A
per-channel weight scale of a transposed convolution would scale its input channels, which the
flow does not lower; that, strides, groups, dilations and output padding are refused, naming the node.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import Namer, add_const, where
from qonnx.core.modelwrapper import ModelWrapper

WEIGHT_QUANTS = ("Quant", "BipolarQuant")


def conv_transpose_limitation(node: NodeProto) -> str | None:
    """Why a ConvTranspose node cannot be rewritten as a Conv (from its attributes), or None."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    kernel = [int(k) for k in attrs.get("kernel_shape", [])]
    if kernel and len(kernel) != 2:
        return f"{len(kernel)}-D transposed convolution (2-D is lowered)"
    checks = (
        ("strides", [1, 1], "stride"),
        ("dilations", [1, 1], "dilation"),
        ("output_padding", [0, 0], "output padding"),
    )
    for key, want, what in checks:
        got = [int(v) for v in attrs.get(key, want)]
        if got != want:
            return f"transposed convolution with {what} {got} (only {want} is lowered)"
    if int(attrs.get("group", 1)) != 1:
        return f"transposed convolution with group {attrs['group']} (only group 1 is lowered)"
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad != "NOTSET" or "output_shape" in attrs:
        return "transposed convolution with auto_pad or output_shape (explicit pads are lowered)"
    pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    if kernel and any(p > k - 1 for p, k in zip(pads, kernel + kernel, strict=True)):
        return f"transposed convolution with pads {pads} larger than kernel - 1 ({kernel})"
    return None


class LowerConvTranspose:
    """ConvTranspose (2-D, stride 1, group 1, constant or per-tensor quantized weight, optional bias)
    -> Conv with the flipped, channel-swapped weight (a new initializer, quantized by a copy of the
    weight's quantizer). ValueError naming the node when it does not apply."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        nodes = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
        if not nodes:
            return model, False
        namer = Namer(model)
        for node in nodes:
            why = conv_transpose_limitation(node)
            if why:
                raise ValueError(f"{where(node)}: {why}")
            weight = self._flipped_weight(model, namer, node)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            k = [int(v) for v in attrs.get("kernel_shape") or model.get_tensor_shape(node.input[1])[2:]]
            pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
            conv = helper.make_node(
                "Conv",
                [node.input[0], weight, *node.input[2:]],
                list(node.output),
                name=namer(node.name + "_as_conv"),
                kernel_shape=k,
                strides=[1, 1],
                dilations=[1, 1],
                pads=[k[i % 2] - 1 - p for i, p in enumerate(pads)],
                group=1,
            )
            conv.doc_string = node.doc_string
            idx = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            model.graph.node.insert(idx, conv)
        return model, True

    @staticmethod
    def _flipped_weight(model: ModelWrapper, namer: Namer, node: NodeProto) -> str:
        """The name of the flipped, channel-swapped weight: a new initializer, or a new quantizer of one."""
        name = node.input[1]
        init = model.get_initializer(name)
        if init is not None:
            return add_const(model, namer, name + "_flipped", _flip(init))
        quant = model.find_producer(name)
        raw = model.get_initializer(quant.input[0]) if quant is not None else None
        if quant is None or quant.op_type not in WEIGHT_QUANTS or raw is None:
            raise ValueError(
                f"{where(node)}: expected a constant weight or a Quant / BipolarQuant of one, found "
                f"{'a graph input' if quant is None else quant.op_type + ' of a computed tensor'}"
            )
        for i in quant.input[1:]:
            operand = model.get_initializer(i)
            if operand is None or np.asarray(operand).size != 1:
                raise ValueError(
                    f"{where(node)}: the weight quantizer {where(quant)} must have per-tensor (scalar) operands "
                    f"to commute with the kernel flip, found {i!r} of shape "
                    f"{None if operand is None else list(np.asarray(operand).shape)}"
                )
        flipped = add_const(model, namer, quant.input[0] + "_flipped", _flip(raw))
        out = namer(name + "_flipped")
        copy = helper.make_node(
            quant.op_type, [flipped, *quant.input[1:]], [out], name=namer(quant.name + "_flipped"),
            domain=quant.domain,
        )  # fmt: skip
        copy.attribute.extend(quant.attribute)
        model.graph.node.insert(list(model.graph.node).index(quant) + 1, copy)
        return out


def _flip(w: np.ndarray) -> np.ndarray:
    """(C_in, C_out, kh, kw) of a transposed convolution -> (C_out, C_in, kh, kw) of the convolution."""
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"expected a 4-D transposed-convolution weight, found shape {list(w.shape)}")
    return np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
