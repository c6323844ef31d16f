"""Part of the streamlining (flows/passes/streamline.py): quantizers become thresholds.

A mixin of the streamliner: a quantizer (Quant, BipolarQuant, MultiThreshold, Trunc) after an
integer tensor ``q`` (an accumulator with its pending tail of float ops, flows/passes/tail.py)
becomes one MultiThreshold on ``q``. The scales, offsets and float ops between them are folded
into the thresholds, found by exact evaluation of the per-channel function from ``q`` to the
quantizer's level (bisection over ``q``'s range, then checked at every threshold). Channels where
that function decreases (negative BatchNorm scales) get their MatMul / Conv weight rows negated
first, so every channel counts upwards.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qnnflow.flows.ir.graph import add_const, datatype_for_range, where
from qnnflow.flows.passes.streamline_emit import layout_of
from qnnflow.flows.passes.tail import (
    IntTensor,
    TailEvaluator,
    TailStep,
    check_thresholds,
    find_thresholds,
    levels_of,
    per_channel,
)
from qonnx.core.datatype import DataType

# the most thresholds one activation may take: 8-bit activations (beyond, a threshold table per
# channel costs more block RAM and comparators than an arithmetic requantizer would)
MAX_THRESHOLDS = 255


class ThresholdMixin:
    """Uses the host class's ``old``, ``new``, ``namer``, ``forms``, ``linear``, ``dtypes``,
    ``_quantizer_form``, ``_check_spread`` and the helpers of flows/passes/streamline_emit.py."""

    def _quantize(self, node: NodeProto, t: IntTensor) -> None:
        """Quantizer after an integer tensor: a MultiThreshold with exactly evaluated thresholds."""
        qf = self._quantizer_form(node)
        src = _per_channel_source(t, t.tail + [self._tail_step(node, t)])
        ev = TailEvaluator(src)
        qA = np.broadcast_to(qf.A, (src.channels,))
        qB = np.broadcast_to(qf.B, (src.channels,))
        qlo, qhi = _level_range(node, qf, ev, src, qA, qB)
        what = where(node)
        _check_threshold_count(what, qlo, qhi)
        before_tail, through_tail = _level_functions(ev, qA, qB, qlo, qhi, qf.bipolar)
        if t.sum_spread is not None:
            self._check_spread(t, before_tail, what)
        self._count_upwards(t, src, through_tail, what)
        thr = find_thresholds(through_tail, src.lo, src.hi, qlo, qhi, what)
        check_thresholds(through_tail, thr, src.lo, src.hi, qlo, what)
        self._emit_quantizer(node, t, qf, thr, qlo, qhi)

    def _count_upwards(self, t: IntTensor, src: IntTensor, levels, what: str) -> None:
        """Negate the weight rows of the channels where ``levels`` (probes of ``q`` -> levels) falls
        from ``src.lo`` to ``src.hi``; ``src`` follows (its scale negated, its range mirrored)."""
        ends = levels(np.stack([src.lo, src.hi]))
        falling = ends[0] > ends[1]
        if np.any(falling):
            if t.negatable is None:
                chans = np.flatnonzero(falling)[:5].tolist()
                raise ValueError(
                    f"{what}: the activation decreases with its input in channels {chans}, which is "
                    f"only supported right after a MatMul / Conv (whose rows are negated)"
                )
            self._negate(t, falling)
            src.A = np.where(falling, -src.A, src.A)
            src.lo, src.hi = np.where(falling, -src.hi, src.lo), np.where(falling, -src.lo, src.hi)
            # the negated rows' range is mirrored: -2..1 becomes -1..2, which INT2 does not hold
            self.dtypes[t.name] = self._dtype(src.lo, src.hi, False)

    def _emit_quantizer(
        self, node: NodeProto, t: IntTensor, qf: IntTensor, thr: np.ndarray, qlo: int, qhi: int
    ) -> None:
        """The MultiThreshold of quantizer ``node`` (form ``qf``) on ``t.name`` counting from
        ``qlo`` (bipolar: 0 / 1 thresholds reached become -1 / +1), then the shape-only nodes of the
        tail, and the form of the quantizer's output."""
        bip = qf.bipolar
        out = self.namer(node.output[0] + "_int")
        thr_name = add_const(self.new, self.namer, node.name + "_thresholds", thr.astype(np.float32))
        odt = DataType["BIPOLAR"] if bip else datatype_for_range(qlo, qhi)
        layout = layout_of(t) if len(self._shape_of(t)) == 4 else None
        self._emit_thresholds(t.name, thr_name, out, node.name + "_mt", odt, -1 if bip else qlo, layout)
        if bip:
            qlo = -1
        for sn in t.shape_nodes:  # back to the shape the quantizer's output has in the original
            out = self._emit_like(sn, out)
            self.dtypes[out] = odt
        self.forms[node.output[0]] = IntTensor(
            out,
            qf.A,
            qf.B,
            np.array([qlo]),
            np.array([qhi]),
            self.old.get_tensor_shape(node.output[0]),
            qf.axis,
            bip,
        )

    def _shape_of(self, t: IntTensor) -> list[int]:
        """Shape of the integer tensor ``t.name`` (before the shape-only nodes of its tail)."""
        if t.shape_nodes:
            return self.old.get_tensor_shape(t.shape_nodes[0].input[0]) or t.shape
        return t.shape

    def _negate(self, t: IntTensor, rows: np.ndarray) -> None:
        node, winit = self.linear[t.name]
        w = self.new.get_initializer(winit)
        sign = np.where(rows, -1.0, 1.0)
        if node.op_type == "Conv":
            w = w * sign.reshape(-1, 1, 1, 1)
        else:
            w = w * sign.reshape(1, -1)
        self.new.set_initializer(winit, w.astype(np.float32))

    def _tail_step(self, node: NodeProto, t: IntTensor) -> TailStep:
        operands: list[np.ndarray | None] = []
        what = where(node)
        for k, name in enumerate(node.input):
            if name == "":
                continue
            v = self.old.get_initializer(name)
            if v is None:
                operands.append(None)
            elif node.op_type == "MultiThreshold" and k == 1:
                thr = np.asarray(v, dtype=np.float64).reshape(-1, np.shape(v)[-1])
                if thr.shape[0] != t.channels:
                    if not np.all(thr == thr[:1]):
                        raise ValueError(f"{what}: {thr.shape[0]} threshold rows for {t.channels} channels")
                    thr = np.repeat(thr[:1], t.channels, axis=0)
                operands.append(thr)
            elif node.op_type == "BatchNormalization":
                operands.append(np.asarray(v, dtype=np.float64))
            elif node.op_type == "Quant" and k == 3:
                operands.append(np.asarray(v, dtype=np.float64))
            else:
                operands.append(per_channel(v, t.shape, t.axis, what))
        if node.op_type == "Div" and operands[0] is not None:
            raise ValueError(f"{what}: dividing a constant by a computed tensor is not supported")
        return TailStep(node, operands)


def _per_channel_source(t: IntTensor, tail: list[TailStep]) -> IntTensor:
    """``t`` with ``tail`` and with ``A``, ``B``, ``lo``, ``hi`` as one value per channel (copies:
    negating falling channels edits them)."""
    src = IntTensor(
        t.name,
        t.A.copy(),
        t.B.copy(),
        t.lo.copy(),
        t.hi.copy(),
        t.shape,
        t.axis,
        t.bipolar,
        tail,
        t.negatable,
    )
    c = src.channels
    src.lo = np.broadcast_to(src.lo, (c,)).astype(np.int64).copy()
    src.hi = np.broadcast_to(src.hi, (c,)).astype(np.int64).copy()
    src.A = np.broadcast_to(src.A, (c,)).astype(np.float64).copy()
    src.B = np.broadcast_to(src.B, (c,)).astype(np.float64).copy()
    return src


def _level_range(
    node: NodeProto, qf: IntTensor, ev: TailEvaluator, src: IntTensor, qA: np.ndarray, qB: np.ndarray
) -> tuple[int, int]:
    """The levels [qlo, qhi] the thresholds count: the quantizer's; 0..1 for a bipolar one; for a
    Trunc, the levels at the ends of the (monotone) input range (v2: within its output range)."""
    qlo, qhi = int(qf.lo.min()), int(qf.hi.max())
    if qf.bipolar:
        qlo, qhi = 0, 1
    if node.op_type == "Trunc":  # k's range: the levels at the ends of the (monotone) input range
        ends = np.rint((ev(np.stack([src.lo, src.hi])).astype(np.float64) - qB) / qA)
        qlo, qhi = int(ends.min()), int(ends.max())
        if len(node.input) == 6:
            qlo, qhi = max(qlo, int(qf.lo.min())), min(qhi, int(qf.hi.max()))
    return qlo, qhi


def _check_threshold_count(what: str, qlo: int, qhi: int) -> None:
    if qhi - qlo > MAX_THRESHOLDS:
        raise ValueError(
            f"{what}: this activation has {qhi - qlo + 1:,} levels ({qlo}..{qhi}), which would take "
            f"{qhi - qlo:,} thresholds per channel; the thresholding layers serve activations of up to "
            f"{MAX_THRESHOLDS.bit_length()} bits ({MAX_THRESHOLDS} thresholds). Quantize this activation to at "
            f"most {MAX_THRESHOLDS.bit_length()} bits (requantization by multiply-shift-round is not implemented)"
        )


def _level_functions(ev: TailEvaluator, qA: np.ndarray, qB: np.ndarray, qlo: int, qhi: int, bip: bool):
    """The quantizer's level (in [qlo, qhi]; bipolar: counted 0 / 1 for -1 / +1) as two functions
    of (P, C) arrays: of the float values before the tail (run in float32 as the reference does, for
    the residual-add check), and of integer probes of ``q`` through the tail (for the thresholds)."""

    def before_tail(values: np.ndarray) -> np.ndarray:
        out = np.asarray(ev.ex.run(values.astype(np.float32)), dtype=np.float32).reshape(values.shape)
        lv = levels_of(out, qA, qB, qlo, qhi)
        return (lv + 1) // 2 if bip else lv

    def through_tail(probe: np.ndarray) -> np.ndarray:
        lv = levels_of(ev(probe), qA, qB, qlo, qhi)
        return (lv + 1) // 2 if bip else lv

    return before_tail, through_tail
