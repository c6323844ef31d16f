"""Clean-up passes on the streamlined integer graph (MatMul / Conv + MultiThreshold).

Each pass has ``apply(model) -> (model, changed)`` and is meant to run to a fixed point.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qnnflow.flows.ir.graph import SHAPE_OPS, Namer, add_const, bypass, consumers
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _set_attr(node, name, value) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def _input_range(model: ModelWrapper, tensor: str) -> tuple[int, int]:
    dt = model.get_tensor_datatype(tensor)
    if not dt.is_integer():
        raise ValueError(f"tensor {tensor} is not integer ({dt.name})")
    return int(dt.min()), int(dt.max())


class RemoveShapeRoundTrips:
    """Matches a chain of shape-only nodes (Reshape, Flatten, Squeeze, Unsqueeze) whose end has the
    same shape as its start, e.g. Unsqueeze -> Squeeze, and removes it. Does not apply to a chain
    with a branch or one that ends at the graph output."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        outputs = {o.name for o in model.graph.output}
        for node in model.graph.node:
            if node.op_type not in SHAPE_OPS:
                continue
            chain = [node]
            while True:
                cons = consumers(model, chain[-1].output[0])
                if len(cons) != 1 or cons[0].op_type not in SHAPE_OPS or chain[-1].output[0] in outputs:
                    break
                chain.append(cons[0])
                if model.get_tensor_shape(chain[-1].output[0]) == model.get_tensor_shape(node.input[0]):
                    if chain[-1].output[0] in outputs:
                        break
                    for n in reversed(chain):
                        bypass(model, n, n.input[0])
                    return model, True
        return model, False


class MoveUniformThresholdsPastReshape:
    """Matches MultiThreshold -> Reshape / Flatten (single consumer) where the thresholds are the
    same for every channel, and swaps them, so the thresholds act on the reshaped stream (e.g. on
    784 pixel features instead of one image channel) and can be folded with any PE. Does not apply
    to thresholds on a MatMul / Conv accumulator, which the MVAU takes in (e.g. the window sum of a
    lowered average pool before a flatten)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for mt in model.get_nodes_by_op_type("MultiThreshold"):
            prod = model.find_producer(mt.input[0])
            if prod is not None and prod.op_type in ("MatMul", "Conv"):
                continue
            cons = consumers(model, mt.output[0])
            if len(cons) != 1 or cons[0].op_type not in ("Reshape", "Flatten"):
                continue
            rs = cons[0]
            if rs.output[0] in {o.name for o in model.graph.output}:
                continue
            thr = model.get_initializer(mt.input[1])
            if thr is None or not np.all(thr == thr[:1]):
                continue
            out_shape = model.get_tensor_shape(rs.output[0])
            if len(out_shape) != 2:
                continue
            src, dst = mt.input[0], rs.output[0]
            namer = Namer(model)
            mid = namer(src + "_reshaped")  # a new name: the reshaped input, not the thresholded values
            new_thr = add_const(
                model, namer, mt.name + "_thresholds", np.repeat(thr[:1], out_shape[1], axis=0)
            )
            rs.input[0], rs.output[0] = src, mid
            mt.input[0], mt.input[1], mt.output[0] = mid, new_thr, dst
            _set_attr(mt, "data_layout", "NC")
            model.set_tensor_shape(mid, out_shape)
            model.set_tensor_datatype(mid, model.get_tensor_datatype(src))
            model.set_tensor_datatype(dst, DataType[_attr(mt, "out_dtype")])
            # keep the node list in topological order: the reshape now comes first
            nodes = list(model.graph.node)
            i, j = nodes.index(mt), nodes.index(rs)
            nodes[i], nodes[j] = nodes[j], nodes[i]
            model.graph.ClearField("node")
            model.graph.node.extend(nodes)
            return model, True
        return model, False


class FuseThresholds:
    """Matches MultiThreshold -> (shape-only nodes) -> MultiThreshold where the second one has the
    same thresholds in every channel, and replaces the pair by one MultiThreshold on the first
    one's input: count2 = #(t2 <= s1 * count1 + b1) is again a step function of the input, with
    thresholds taken from the first one's rows (exact, no float evaluation)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for mt2 in model.get_nodes_by_op_type("MultiThreshold"):
            chain = []
            p = model.find_producer(mt2.input[0])
            while p is not None and p.op_type in SHAPE_OPS and len(consumers(model, p.output[0])) == 1:
                chain.append(p)
                p = model.find_producer(p.input[0])
            if p is None or p.op_type != "MultiThreshold" or len(consumers(model, p.output[0])) != 1:
                continue
            mt1 = p
            t1, t2 = model.get_initializer(mt1.input[1]), model.get_initializer(mt2.input[1])
            if t1 is None or t2 is None or not np.all(t2 == t2[:1]):
                continue
            s1, b1 = float(_attr(mt1, "out_scale", 1.0)), float(_attr(mt1, "out_bias", 0.0))
            if s1 <= 0:
                continue
            lo, hi = _input_range(model, mt1.input[0])
            n1 = t1.shape[1]
            # least count1 with s1 * count1 + b1 >= t2, for each threshold of the second one
            m = np.ceil((t2[0].astype(np.float64) - b1) / s1 - 1e-9).astype(np.int64)
            rows = []
            for r in t1.astype(np.int64):
                row = np.where(m <= 0, lo, np.where(m > n1, hi + 1, r[np.clip(m - 1, 0, n1 - 1)]))
                rows.append(row)
            fused = np.array(rows, dtype=np.float32)
            namer = Namer(model)
            name = add_const(model, namer, mt1.name + "_fused", fused)
            mt1.input[1] = name
            for k in ("out_scale", "out_bias", "out_dtype"):
                v = _attr(mt2, k)
                if v is None and k == "out_scale":
                    v = 1.0
                if v is None and k == "out_bias":
                    v = 0.0
                _set_attr(mt1, k, v)
            odt = DataType[_attr(mt2, "out_dtype")]
            # the first one now counts the second one's levels: new names for it and the shape
            # nodes after it, so that no tensor name stands for two different values
            for n in [mt1, *reversed(chain)]:
                old, new = n.output[0], namer(n.output[0] + "_fused")
                shape = model.get_tensor_shape(old)
                for c in consumers(model, old):
                    c.input[list(c.input).index(old)] = new
                n.output[0] = new
                model.set_tensor_shape(new, shape)
                model.set_tensor_datatype(new, odt)
            bypass(model, mt2, mt2.input[0])
            return model, True
        return model, False


def integer_cleanup_passes() -> list:
    return [MoveUniformThresholdsPastReshape(), FuseThresholds(), RemoveShapeRoundTrips()]


__all__ = [
    "FuseThresholds",
    "MoveUniformThresholdsPastReshape",
    "RemoveShapeRoundTrips",
    "integer_cleanup_passes",
]
