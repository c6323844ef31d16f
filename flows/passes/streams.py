"""Stream plumbing between folded hardware layers: width converters and FIFOs.

- :class:`InsertWidthConverters`: where a layer's output beat (PE elements) differs from the next
  layer's input beat (SIMD / PE elements), a WidthConverter between them.
- :class:`InsertFIFOs`: a FIFO of ``depth`` beats on every stream between two layers (default
  depth 2: a register slice; sizing the depths from RTL simulation is codegen's job).
Both apply once per stream (they skip streams that already have one) and keep tensor names.
"""

from __future__ import annotations

import numpy as np
from qnnflow.flows.ir.graph import HW_DOMAIN, SHAPE_OPS, Namer, consumers
from qnnflow.flows.ir.layers import FIFO, WidthConverter, get_layer
from qonnx.core.modelwrapper import ModelWrapper


def _streams(model: ModelWrapper):
    """(producer layer node, consumer layer node, tensor entering the consumer) for every HW->HW stream."""
    for node in list(model.graph.node):
        if node.domain != HW_DOMAIN:
            continue
        for out in node.output:
            todo = [out]
            while todo:
                t = todo.pop()
                for c in consumers(model, t):
                    if c.domain == HW_DOMAIN:
                        yield node, c, t
                    elif c.op_type in SHAPE_OPS:
                        todo.append(c.output[0])


def _insert_before(model: ModelWrapper, consumer, tensor: str, node, new_tensor: str) -> None:
    for i, name in enumerate(consumer.input):
        if name == tensor:
            consumer.input[i] = new_tensor
    nodes = list(model.graph.node)
    nodes.insert(nodes.index(consumer), node)
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    model.set_tensor_shape(new_tensor, model.get_tensor_shape(tensor))
    model.set_tensor_datatype(new_tensor, model.get_tensor_datatype(tensor))


def _elements(model: ModelWrapper, tensor: str) -> int:
    return int(np.prod(model.get_tensor_shape(tensor)[1:]))


class InsertWidthConverters:
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for prod, cons, t in _streams(model):
            if prod.op_type == "WidthConverter" or cons.op_type == "WidthConverter":
                continue
            a, b = get_layer(prod), get_layer(cons)
            if a.out_width == b.in_width:
                continue
            ew = int(model.get_tensor_datatype(t).bitwidth())
            namer = Namer(model)
            new_t = namer(t + "_dwc")
            node = WidthConverter.make(
                namer("WidthConverter"),
                [t],
                [new_t],
                inWidth=a.out_width,
                outWidth=b.in_width,
                elemWidth=ew,
                elements=_elements(model, t),
            )
            _insert_before(model, cons, t, node, new_t)
            return model, True
        return model, False


class InsertFIFOs:
    def __init__(self, depth: int = 2):
        if depth < 1:
            raise ValueError(f"FIFO depth must be at least 1, not {depth}")
        self.depth = depth

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for prod, cons, t in _streams(model):
            if prod.op_type == "FIFO" or cons.op_type == "FIFO":
                continue
            width = get_layer(prod).out_width
            ew = int(model.get_tensor_datatype(t).bitwidth())
            namer = Namer(model)
            new_t = namer(t + "_fifo")
            node = FIFO.make(
                namer("FIFO"),
                [t],
                [new_t],
                depth=self.depth,
                width=width,
                beats=_elements(model, t) * ew // width,
            )
            _insert_before(model, cons, t, node, new_t)
            return model, True
        return model, False
