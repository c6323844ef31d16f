"""Part of the streamlining (flows/passes/streamline.py): label selection (TopK / ArgMax).

A mixin of the streamliner: TopK / ArgMax act on the accumulator itself when the pending tail is
the same strictly increasing function in every class (a strictly decreasing one negates the last
layer's rows first); an affine tail with per-class (or negative, or zero) scales and offsets
becomes the exact integer map of flows/passes/label_map.py (integer Mul / Add) before them.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import where
from qnnflow.flows.passes.label_map import affine_tail, map_nodes, per_class, tail_class_map
from qnnflow.flows.passes.tail import IntTensor, TailEvaluator, TailStep

CHECK_LIMIT = 1 << 22  # widest accumulator range whose final scale is tabulated to check it


class SelectMixin:
    """Uses the host class's ``old``, ``new``, ``namer``, ``nodes``, ``forms``, ``dtypes``,
    ``_negate`` and the helpers of flows/passes/streamline_emit.py."""

    def _select(self, node: NodeProto, t: IntTensor) -> None:
        """TopK / ArgMax on the accumulator: directly when the tail is one strictly increasing
        function in every class, else through the exact per-class map of :meth:`_select_mapped`."""
        what = where(node)
        lo, hi = int(np.min(t.lo)), int(np.max(t.hi))
        if per_class(t) or (hi - lo + 1 > CHECK_LIMIT and affine_tail(t)):
            self._select_mapped(node, t)
            return
        if hi - lo + 1 > CHECK_LIMIT:
            raise ValueError(f"{what}: accumulator range [{lo}, {hi}] too wide to check the final scale")
        vals = TailEvaluator(_first_class(t, lo, hi))(np.arange(lo, hi + 1).reshape(-1, 1)).ravel()
        steps = np.diff(vals.astype(np.float64))
        if np.all(steps < 0) and t.negatable is not None:
            # strictly decreasing (a negative scale): the largest logit is the smallest accumulator, so the
            # last layer's rows are negated (exact in integers) and label selection takes the largest
            self._negate(t, np.ones(t.channels, dtype=bool))
            self.dtypes[t.name] = self._dtype(-hi, -lo, False)
        elif np.any(steps <= 0) and affine_tail(t):
            # decreasing with no rows to negate, or float32 logits that round two accumulators alike:
            # the exact map decides (a multiplier of -1, or the accumulator itself)
            self._select_mapped(node, t)
            return
        elif np.any(steps <= 0):
            raise ValueError(
                f"{what}: the final scale is not strictly increasing, so the argmax of the "
                f"integer accumulator may differ from the argmax of the logits"
            )
        self._emit_select(node, t, t.name)

    def _select_mapped(self, node: NodeProto, t: IntTensor) -> None:
        """Per-class scales and offsets (and zero or negative ones) before TopK / ArgMax: the exact
        integer map of flows/passes/label_map.py as integer Mul / Add before it (folded into LabelSelect)."""
        cmap = tail_class_map(t, where(node), node.op_type)
        lo, hi = int(np.min(t.lo)), int(np.max(t.hi))
        src = t.name
        for sn in t.shape_nodes:  # the map's constants broadcast against the original's shape
            src = self._emit_like(sn, src)
            if t.name in self.dtypes:
                self.dtypes[src] = self.dtypes[t.name]
        shape = [1] * len(t.shape)
        shape[t.axis] = t.channels
        nodes, cur, types = map_nodes(self.new, self.namer, src, cmap, lo, hi, shape)
        self.nodes.extend(nodes)
        self.dtypes.update(types)
        self._emit_select(node, t, cur)

    def _emit_select(self, node: NodeProto, t: IntTensor, src: str) -> None:
        ins = [src] + [i for i in node.input[1:]]
        outs = [self._rename(o) if o else "" for o in node.output]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.nodes.append(helper.make_node(node.op_type, ins, outs, name=node.name, **attrs))
        for o, new in zip(node.output, outs, strict=True):
            if o:
                self.forms[o] = IntTensor(
                    new,
                    np.ones(()),
                    np.zeros(()),
                    np.array([0]),
                    np.array([t.channels]),
                    self.old.get_tensor_shape(o) or [1],
                    1,
                )


def _first_class(t: IntTensor, lo: int, hi: int) -> IntTensor:
    """The tail of ``t`` on its first class only (the same function in every class), as a (1, 1)
    tensor over the accumulator range [lo, hi]."""
    return IntTensor(
        t.name,
        np.asarray(t.A).reshape(-1)[:1],
        np.asarray(t.B).reshape(-1)[:1],
        np.array([lo]),
        np.array([hi]),
        [1, 1],
        1,
        t.bipolar,
        [
            TailStep(
                s.node,
                [
                    o
                    if o is None or np.asarray(o).size == 1 or s.node.op_type != "BatchNormalization"
                    else np.asarray(o).ravel()[:1]
                    for o in s.operands
                ],
            )
            for s in t.tail
        ],
    )
