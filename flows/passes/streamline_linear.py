"""Part of the streamlining (flows/passes/streamline.py): linear layers and collapsing tails.

A mixin of the streamliner: MatMul / Gemm / Conv on integer weights (also a depthwise Conv, group =
channels: each output channel's accumulator over its own input channel's window, so per-channel
input scales are taken there), and turning a tail of float ops between a quantizer and the next
linear layer into a plain scale (or a re-levelling MultiThreshold).
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import add_const, datatype_for_range, where
from qnnflow.flows.ir.inputs import GRID_HELP
from qnnflow.flows.passes.streamline_emit import layout_of
from qnnflow.flows.passes.tail import FloatPath, IntTensor, TailEvaluator, per_channel
from qnnflow.flows.passes.weights import int_weight, weight_datatype
from qonnx.core.datatype import DataType

COLLAPSE_LIMIT = 1 << 16  # widest integer range a tail may be tabulated over


def group_limitation(group: int, out_channels: int, in_per_group: int) -> str | None:
    """Why a Conv of ``group`` groups with weights (``out_channels``, ``in_per_group``, ...) cannot
    be lowered, or None: lowered are group 1 and depthwise (one input channel per group and one
    output channel per input channel; hw/vvau.sv)."""
    if group == 1 or (in_per_group == 1 and out_channels == group):
        return None
    if in_per_group == 1 and out_channels % group == 0:
        return (
            f"depthwise convolution with depth multiplier {out_channels // group} (group {group}, "
            f"{out_channels} output channels); lowered is depth multiplier 1 (group = input channels = "
            f"output channels)"
        )
    return (
        f"grouped convolution, group {group} of {in_per_group} input channels each; lowered are group 1 "
        f"and depthwise (group = input channels = output channels)"
    )


class LinearMixin:
    """Uses the host class's ``old``, ``new``, ``namer``, ``nodes``, ``forms``, ``linear``, ``dtypes``
    and the helpers of flows/passes/streamline_emit.py."""

    # -- linear layers ---------------------------------------------------------------------------
    def _linear(self, node: NodeProto, t: IntTensor | FloatPath) -> None:
        what = where(node)
        if isinstance(t, FloatPath):
            raise ValueError(
                f"{what}: its input is not quantized (no quantizer between the graph input and it); declare "
                f"the grid the inputs lie on with --input-grid: {GRID_HELP}"
            )
        t = self._collapse(t, node)
        op = node.op_type
        attrs = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        a, b = self._input_affine(t, op == "Conv" and int(attrs.get("group", 1)) != 1, what)
        w = int_weight(self.old, node.input[1], what)
        wv, ws = w.values, np.broadcast_to(w.scale, w.values.shape) if w.scale.ndim else w.scale
        bias = None
        if op == "Gemm":
            wv, ws, bias = self._gemm_weights(node, attrs, wv, ws)
        if op == "Conv":
            wscale, wsum, pos, neg, bias = self._conv_weights(node, attrs, wv, ws, t, b)
        else:
            wscale = per_channel(np.broadcast_to(ws, wv.shape) if np.ndim(ws) else ws, list(wv.shape), 1, what)
            wsum = wv.sum(0)
            pos, neg = np.clip(wv, 0, None).T, np.clip(wv, None, 0).T
        xlo, xhi = int(np.min(t.lo)), int(np.max(t.hi))
        lo = (pos * xlo + neg * xhi).sum(1).astype(np.int64)
        hi = (pos * xhi + neg * xlo).sum(1).astype(np.int64)
        A = a * np.asarray(wscale, dtype=np.float64)
        B = b * np.asarray(wscale, dtype=np.float64) * wsum
        if bias is not None:
            B = B + per_channel(bias, [len(lo)], 0, what)
        wname = add_const(self.new, self.namer, node.name + "_weights", wv.astype(np.float32), weight_datatype(w))
        out = self.namer(node.output[0] + "_acc")
        if op == "Conv":
            keep = {k: v for k, v in attrs.items() if k in ("kernel_shape", "pads", "strides", "dilations", "group")}
            new = helper.make_node("Conv", [t.name, wname], [out], name=node.name, **keep)
        else:
            new = helper.make_node("MatMul", [t.name, wname], [out], name=node.name)
        self.nodes.append(new)
        self.linear[out] = (new, wname)
        shape = self.old.get_tensor_shape(node.output[0])
        self.dtypes[out] = datatype_for_range(int(lo.min()), int(hi.max()))
        self.forms[node.output[0]] = IntTensor(out, A, B, lo, hi, shape, 1, False, [], out)

    def _gemm_weights(self, node: NodeProto, attrs: dict, wv: np.ndarray, ws) -> tuple:
        """(weights, scale, bias or None) of a Gemm as those of ``x @ W``: ``transB`` undone,
        ``alpha`` in the scale, ``beta`` in the bias."""
        bias = None
        if attrs.get("transA", 0):
            raise ValueError(f"{where(node)}: Gemm with transA is not supported")
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if attrs.get("transB", 0):
            wv, ws = wv.T, (ws.T if np.ndim(ws) else ws)
        ws = np.asarray(ws) * alpha
        if len(node.input) > 2 and node.input[2]:
            bias = beta * self._bias(node, 2)
        return wv, ws, bias

    def _conv_weights(self, node: NodeProto, attrs: dict, wv: np.ndarray, ws, t: IntTensor, b) -> tuple:
        """(scale, weight sum, positive and negative weights (rows: output channels), bias or None)
        of a Conv with weights ``wv`` (Cout, Cin / group, KH, KW) on input ``t`` (offset ``b``),
        after checking that it is lowered (group 1 or depthwise, no dilation, zero padding only
        where zero is an integer level)."""
        what = where(node)
        bias = None
        group = int(attrs.get("group", 1))
        why = group_limitation(group, wv.shape[0], wv.shape[1])
        if why is None and group != 1 and group != t.shape[t.axis]:
            why = f"group {group} for {t.shape[t.axis]} input channels; depthwise needs group = input channels"
        if why:
            raise ValueError(f"{what}: {why}")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise ValueError(f"{what}: dilated convolutions are not supported")
        if len(node.input) > 2 and node.input[2]:
            bias = self._bias(node, 2)
        wscale = per_channel(np.broadcast_to(ws, wv.shape) if np.ndim(ws) else ws, list(wv.shape), 0, what)
        pads = attrs.get("pads", [0, 0, 0, 0])
        if any(pads) and (np.any(b != 0) or t.bipolar):
            raise ValueError(
                f"{what}: zero padding needs an input whose zero is an integer level (no offset, not bipolar)"
            )
        wsum = wv.reshape(wv.shape[0], -1).sum(1)
        pos, neg = (
            np.clip(wv, 0, None).reshape(wv.shape[0], -1),
            np.clip(wv, None, 0).reshape(wv.shape[0], -1),
        )
        return wscale, wsum, pos, neg, bias

    @staticmethod
    def _input_affine(t: IntTensor, depthwise: bool, what: str) -> tuple:
        """(a, b) of the input ``a * q + b``: floats, or for a depthwise Conv (whose channels do not
        mix, so each output channel takes its input channel's) one per channel when they differ."""
        if t.uniform:
            return float(np.ravel(t.A)[0]), float(np.ravel(t.B)[0])
        if not depthwise:
            raise ValueError(f"{what}: the input has per-channel scales; only per-tensor input scales are supported")
        c = t.channels
        a, b = (np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1), (c,)).copy() for v in (t.A, t.B))
        return a, b

    def _bias(self, node: NodeProto, i: int) -> np.ndarray:
        v = self.old.get_initializer(node.input[i])
        if v is not None:
            return np.asarray(v, dtype=np.float64)
        p = self.old.find_producer(node.input[i])
        if p is not None and p.op_type == "Quant" and self.old.get_initializer(p.input[0]) is not None:
            from qnnflow.flows.ir.reference import quantize64

            args = [np.asarray(self.old.get_initializer(x), dtype=np.float64) for x in p.input]
            return quantize64(p, args).astype(np.float64)
        raise ValueError(f"{where(node)}: bias must be a constant")

    def _collapse(self, t: IntTensor, user: NodeProto) -> IntTensor:
        """Make ``t`` a plain ``A * q + B`` (no tail) before a MatMul / Conv: tabulate the tail over
        the range of ``q``; an affine table is absorbed, a table of equally spaced levels becomes a
        MultiThreshold (q -> level index); integer offsets become the threshold's output offset. The
        shape-only nodes of the tail (a Flatten after a pooling) are applied to the result."""
        if not t.tail:
            return t
        out = self._collapse_values(t, user)
        if t.shape_nodes:
            name = out.name
            dt = self.dtypes.get(name) or self._dtype(out.lo, out.hi, out.bipolar)
            for sn in t.shape_nodes:
                name = self._emit_like(sn, name)
                self.dtypes[name] = dt
            out = IntTensor(name, out.A, out.B, out.lo, out.hi, t.shape, t.axis, out.bipolar)
        return out

    def _collapse_values(self, t: IntTensor, user: NodeProto) -> IntTensor:
        what = where(user)
        lo, hi = int(np.min(t.lo)), int(np.max(t.hi))
        if hi - lo + 1 > COLLAPSE_LIMIT:
            raise ValueError(
                f"{what}: its input is a wide integer ({lo}..{hi}) with float ops pending and no "
                f"quantizer; a quantizer must come before {user.op_type}"
            )
        c = t.channels
        flat = IntTensor(
            t.name,
            np.broadcast_to(t.A, (c,)).copy(),
            np.broadcast_to(t.B, (c,)).copy(),
            np.full(c, lo),
            np.full(c, hi),
            t.shape,
            t.axis,
            t.bipolar,
            t.tail,
        )
        qs = np.array([-1, 1]) if t.bipolar else np.arange(lo, hi + 1)
        vals = TailEvaluator(flat)(np.repeat(qs[:, None], c, axis=1)).astype(np.float64)
        levels = np.unique(vals)
        if not np.all(vals == vals[:, :1]):
            raise ValueError(
                f"{what}: the float ops before it differ between channels; only per-tensor "
                f"scaling is supported between a quantizer and a MatMul / Conv"
            )
        step, idx = _level_index(vals[:, 0], levels, what)
        base = levels[0] / step
        shift = int(round(base)) if abs(base - round(base)) < 1e-6 else None
        if len(levels) == 2 and levels[1] > 0 and np.isclose(levels[1], -levels[0]):
            # two symmetric levels {-s, +s}: a bipolar stream
            if t.bipolar and idx[0] == 0 and idx[-1] == 1:
                return IntTensor(
                    t.name,
                    np.array(step / 2),
                    np.zeros(()),
                    np.array([-1]),
                    np.array([1]),
                    t.shape,
                    t.axis,
                    True,
                )
            return self._relevel(t, qs, idx, 0, step / 2, bipolar=True)
        if shift is None:
            return self._relevel(t, qs, idx, 0, step, offset=levels[0])
        if not t.bipolar and np.array_equal(idx + shift, qs):
            return IntTensor(t.name, np.array(step), np.zeros(()), np.array([lo]), np.array([hi]), t.shape, t.axis)
        return self._relevel(t, qs, idx, shift, step)

    def _relevel(self, t, qs, idx, shift, step, offset=0.0, bipolar=False) -> IntTensor:
        """A MultiThreshold mapping q to ``idx + shift`` (or to bipolar), value = step * q' + offset."""
        thr = np.array([qs[np.argmax(idx >= j)] for j in range(1, int(idx.max()) + 1)], dtype=np.float32)
        c = t.channels
        thr_name = add_const(self.new, self.namer, t.name + "_relevel", np.tile(thr, (c, 1)))
        out = self.namer(t.name + "_lvl")
        lo, hi = (-1, 1) if bipolar else (shift, shift + int(idx.max()))
        odt = DataType["BIPOLAR"] if bipolar else datatype_for_range(lo, hi)
        layout = layout_of(t) if len(t.shape) == 4 else None
        self._emit_thresholds(t.name, thr_name, out, "Relevel", odt, -1 if bipolar else shift, layout)
        return IntTensor(
            out, np.array(step), np.array(offset), np.array([lo]), np.array([hi]), t.shape, t.axis, bipolar
        )


def _level_index(v: np.ndarray, levels: np.ndarray, what: str) -> tuple[float, np.ndarray]:
    """(step, idx): the values ``v`` (of the sorted distinct ``levels``) as ``levels[0] + idx * step``
    with a non-decreasing integer ``idx``; ValueError if they are not equally spaced or decrease."""
    if len(levels) == 1:
        step = 1.0
    else:
        # the levels come from float32 ops: refine the smallest gap over the whole span so rounding in
        # one gap does not accumulate over many levels, and allow float32 noise in the check
        step = float(np.min(np.diff(levels)))
        span = float(levels[-1] - levels[0])
        step = span / max(1.0, round(span / step))
    idx = np.rint((v - levels[0]) / step)
    noise = 1e-5 * max(abs(step), float(np.max(np.abs(levels))))
    if not np.allclose(levels[0] + idx * step, v, rtol=0, atol=noise):
        raise ValueError(f"{what}: its input levels {levels[:6].tolist()} are not equally spaced")
    if np.any(np.diff(idx) < 0):
        raise ValueError(f"{what}: the float ops before it are not increasing")
    return step, idx
