"""Part of the streamlining (flows/passes/streamline.py): elementwise ops, data movement, pooling.

A mixin of the streamliner for the ops that need no new arithmetic on an integer tensor ``q``:

- elementwise ops with constants, BatchNormalization and monotonic activations join the pending
  tail of float ops (flows/passes/tail.py), to be folded into the next quantizer's thresholds;
- data movement (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity) is copied onto ``q``
  when nothing per-channel is pending, else joins the tail if it keeps the channel axis intact
  (a Transpose of ``q`` itself moves the channel axis with it);
- MaxPool is copied onto a quantized activation (positive per-tensor scale: the max commutes);
- TVSmooth (flows/ir/custom_ops.py) on a quantized activation whose value is its own ``scale``
  times the integer tensor (A = scale, B = 0) becomes the same op on the integer tensor with
  scale 1: the step is defined on the codes, so it is the same integer function there.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.custom_ops import tv_node_params
from qnnflow.flows.ir.graph import where
from qnnflow.flows.passes.tail import IntTensor, TailStep

DATA_MOVEMENT = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity")


class MoveMixin:
    """Uses the host class's ``old``, ``forms``, ``linear``, ``dtypes``, ``_tail_step`` and the
    helpers of flows/passes/streamline_emit.py."""

    def _elementwise(self, node: NodeProto, t: IntTensor) -> None:
        step = self._tail_step(node, t)
        slope = None
        if node.op_type == "LeakyRelu":
            slope = np.asarray(next((a.f for a in node.attribute if a.name == "alpha"), 0.01))
        elif node.op_type == "PRelu":
            slope = step.operands[1]
        if slope is not None and np.any(np.asarray(slope) < 0):
            raise ValueError(
                f"{where(node)}: a negative slope ({float(np.min(slope)):g}) makes {node.op_type} non-monotonic "
                f"(it falls, then rises), so the quantizer after it cannot become thresholds on the accumulator; "
                f"only activations that never decrease (or never increase) with their input are lowered"
            )
        shape = self.old.get_tensor_shape(node.output[0])
        self.forms[node.output[0]] = _pending(t, step, shape, t.axis, t.shape_nodes)

    def _move(self, node: NodeProto, t: IntTensor) -> None:
        out_shape = self.old.get_tensor_shape(node.output[0])
        if node.op_type == "Transpose" and not t.shape_nodes:
            self._transpose(node, t, out_shape)
            return
        keeps = _kept_axis(t.shape, t.axis, out_shape) is not None and node.op_type != "Transpose"
        if not t.tail and t.uniform and not (t.negatable and keeps):
            q = self._emit_like(node, t.name)
            lo, hi = np.array([t.lo.min()]), np.array([t.hi.max()])
            self.dtypes[q] = self._dtype(lo, hi, t.bipolar)
            self.forms[node.output[0]] = IntTensor(
                q,
                t.A.reshape(-1)[:1].reshape(()),
                t.B.reshape(-1)[:1].reshape(()),
                lo,
                hi,
                out_shape,
                min(1, len(out_shape) - 1),
                t.bipolar,
            )
            return
        # An accumulator with its per-channel tail: only moves that keep the channel axis intact.
        axis = _kept_axis(t.shape, t.axis, out_shape)
        if axis is None or node.op_type == "Transpose":
            raise ValueError(
                f"{where(node)}: cannot move a tensor that still has per-channel scaling or an activation "
                f"pending; put the quantizer before {node.op_type}"
            )
        self.forms[node.output[0]] = _pending(t, TailStep(node, [None]), out_shape, axis, t.shape_nodes + [node])

    def _transpose(self, node: NodeProto, t: IntTensor, out_shape: list[int]) -> None:
        """Transpose of the integer tensor itself (e.g. NCHW -> NHWC after a channels-last Conv in
        a QKeras export): scales, offsets and the pending per-channel tail follow the channel axis."""
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        perm = list(attrs.get("perm", range(len(t.shape) - 1, -1, -1)))
        q = self._emit_like(node, t.name)
        self.dtypes[q] = self.dtypes.get(t.name) or self._dtype(t.lo, t.hi, t.bipolar)
        if t.name in self.linear:  # rows of its MatMul / Conv may still be negated
            self.linear[q] = self.linear[t.name]
        self.forms[node.output[0]] = IntTensor(
            q, t.A, t.B, t.lo, t.hi, out_shape, perm.index(t.axis), t.bipolar, t.tail,
            t.negatable, [], t.sum_spread,
        )  # fmt: skip

    def _maxpool(self, node: NodeProto, t: IntTensor) -> None:
        if t.tail or not t.uniform or np.any(t.A <= 0):
            raise ValueError(
                f"{where(node)}: MaxPool must come after the activation quantizer (a positive per-tensor "
                f"scale), not between a MatMul / Conv and its activation"
            )
        q = self._emit_like(node, t.name)
        self.dtypes[q] = self._dtype(t.lo, t.hi, t.bipolar)
        self.forms[node.output[0]] = IntTensor(
            q, t.A, t.B, t.lo, t.hi, self.old.get_tensor_shape(node.output[0]), t.axis, t.bipolar
        )

    def _tv_smooth(self, node: NodeProto, t: IntTensor) -> None:
        _, lo, hi = _tv_codes_check(node, t)
        q = self._emit_like(node, t.name)
        new = self.nodes[-1]
        for a in new.attribute:
            if a.name == "scale":
                a.f = 1.0
        out_lo, out_hi = np.array([lo]), np.array([hi])
        self.dtypes[q] = self._dtype(out_lo, out_hi, False)
        self.forms[node.output[0]] = IntTensor(
            q, t.A, t.B, out_lo, out_hi, self.old.get_tensor_shape(node.output[0]), t.axis, False
        )


def _tv_codes_check(node: NodeProto, t: IntTensor) -> tuple[float, int, int]:
    """(scale, lo, hi) of a TVSmooth node if its input ``t`` is ``scale`` times integer codes in lo .. hi;
    else a ValueError saying what must hold."""
    scale, lo, hi, _, _ = tv_node_params(node)
    if t.tail or not t.uniform:
        raise ValueError(
            f"{where(node)}: TVSmooth must come right after the activation quantizer (a per-tensor scale, "
            f"nothing pending), not between a MatMul / Conv and its activation"
        )
    a, b = float(t.A.reshape(-1)[0]), float(t.B.reshape(-1)[0])
    if b != 0.0 or not np.isclose(a, scale, rtol=1e-6, atol=0.0):
        raise ValueError(
            f"{where(node)}: TVSmooth's input must be its scale ({scale:g}) times integer codes, found "
            f"{a:g} * q + {b:g} (the quantizer before it must have that scale and zero point 0)"
        )
    if int(t.lo.min()) < lo or int(t.hi.max()) > hi:
        raise ValueError(
            f"{where(node)}: TVSmooth's codes must lie in {lo}..{hi}, the quantizer before it gives "
            f"{int(t.lo.min())}..{int(t.hi.max())}"
        )
    return scale, lo, hi


def _pending(t: IntTensor, step: TailStep, shape: list[int], axis: int, shape_nodes: list[NodeProto]) -> IntTensor:
    """The form of the output of ``step``'s node when it joins the tail of ``t``: the same integer
    tensor, of the original ``shape`` with channels at ``axis``, with that node pending. (A residual
    add's ``sum_spread`` is carried; only a quantizer or an elementwise op may follow the add.)"""
    return IntTensor(
        t.name,
        t.A,
        t.B,
        t.lo,
        t.hi,
        shape,
        axis,
        t.bipolar,
        t.tail + [step],
        t.negatable,
        shape_nodes,
        t.sum_spread,
    )


def _kept_axis(in_shape: list[int], axis: int, out_shape: list[int]) -> int | None:
    """The channel axis after a move that only adds / removes size-1 dims, else None."""
    c = in_shape[axis]
    before = int(np.prod(in_shape[:axis]))
    acc = 1
    for i, d in enumerate(out_shape):
        if acc == before and d == c and int(np.prod(out_shape[i + 1 :])) == int(np.prod(in_shape[axis + 1 :])):
            return i
        acc *= d
    return None
