"""Part of the streamlining (flows/passes/streamline.py): what a quantizer's output is in integers.

A mixin of the streamliner that reads a quantizer node of the original graph (Quant,
BipolarQuant, MultiThreshold, Trunc v1 / v2) as ``value = A * q + B`` with ``q`` an integer in
``[lo, hi]`` (or bipolar, {-1, +1}): the form of its output, from its constant operands and
attributes. Used where the float input is quantized (flows/passes/streamline_io.py) and where a
quantizer becomes thresholds (flows/passes/streamline_thresholds.py).
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import where
from qnnflow.flows.passes.tail import IntTensor, per_channel


class QuantizerFormMixin:
    """Uses the host class's ``old``."""

    def _quantizer_form(self, node: NodeProto) -> IntTensor:
        """The integer form of the output of quantizer ``node``: value = A * q + B, q in [lo, hi]."""
        old = self.old
        shape = old.get_tensor_shape(node.output[0])
        axis = min(1, len(shape) - 1)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "BipolarQuant":
            s = self._const(node, 1)
            return IntTensor(
                "",
                per_channel(s, shape, axis, where(node)),
                np.zeros(()),
                np.array([-1]),
                np.array([1]),
                shape,
                axis,
                bipolar=True,
            )
        if node.op_type == "MultiThreshold":
            thr = self._const(node, 1)
            scale, bias = float(attrs.get("out_scale", 1.0)), float(attrs.get("out_bias", 0.0))
            layout = attrs.get("data_layout", b"")
            layout = layout.decode() if isinstance(layout, bytes) else layout
            if layout and "C" in layout:
                axis = layout.index("C")
            if thr.shape[-1] == 1 and scale > 0 and bias == -scale / 2:
                # two levels symmetric about zero, {-s/2, +s/2} (FINN-ONNX's bipolar activations: out_scale 2,
                # out_bias -1): carried as bipolar, so the next layer is an XNOR-popcount with no per-output
                # offset, as for BipolarQuant
                return IntTensor("", np.array(scale / 2), np.zeros(()), np.array([-1]), np.array([1]), shape, axis,
                                 bipolar=True)  # fmt: skip
            return IntTensor("", np.array(scale), np.array(bias), np.array([0]), np.array([thr.shape[-1]]), shape, axis)
        if node.op_type == "Trunc":
            return self._trunc_form(node, shape, axis, attrs)
        s, zp, bw = (self._const(node, i) for i in (1, 2, 3))
        bits = int(np.asarray(bw).ravel()[0])
        signed, narrow = int(attrs.get("signed", 1)), int(attrs.get("narrow", 0))
        if not np.all(np.asarray(bw) == bits) or bits != np.asarray(bw).ravel()[0]:
            raise ValueError(f"{where(node)}: bit width must be one integer, not {bw}")
        s = per_channel(s, shape, axis, where(node))
        zp = per_channel(zp, shape, axis, where(node))
        if bits == 1 and signed:
            # qonnx: a signed 1-bit Quant is bipolar, sign(x / s + zp) in {-1, +1}, whatever ``narrow``
            # says (older Brevitas exports write it so), and its value (q - zp) * s
            return IntTensor("", s, -zp * s, np.array([-1]), np.array([1]), shape, axis, bipolar=True)
        qmin, qmax = _int_range(bits, signed, narrow)
        if np.all(zp == np.round(zp)):
            zpi = np.round(zp).astype(np.int64)
            if zpi.size > 1 and not np.all(zpi == zpi.flat[0]):
                raise ValueError(f"{where(node)}: per-channel zero points are not supported")
            z = int(zpi.flat[0])
            return IntTensor("", s, np.zeros(()), np.array([qmin - z]), np.array([qmax - z]), shape, axis)
        return IntTensor("", s, -zp * s, np.array([qmin]), np.array([qmax]), shape, axis)

    def _trunc_form(self, node: NodeProto, shape: list[int], axis: int, attrs: dict) -> IntTensor:
        """Trunc (QONNX v2, 6 inputs: x, scale, zeropt, in_bits, out_scale, out_bits; v1, 5 inputs:
        x, scale, zeropt, in_bits, out_bits): value = A * k + B for an integer k. v2 clamps k to
        ``out_bits`` (signed / narrow); v1 does not, and its range is taken from the input's where it
        becomes thresholds (flows/passes/streamline_thresholds.py)."""
        what = where(node)
        s = per_channel(self._const(node, 1), shape, axis, what)
        zp = per_channel(self._const(node, 2), shape, axis, what)
        if len(node.input) == 6:
            out_scale = per_channel(self._const(node, 4), shape, axis, what)
            bits = int(np.asarray(self._const(node, 5)).ravel()[0])
            trunc_scale = 2.0 ** np.round(np.log2(out_scale / s))
            qmin, qmax = _int_range(bits, int(attrs.get("signed", 1)), int(attrs.get("narrow", 0)))
            return IntTensor(
                "", out_scale, -zp / trunc_scale * out_scale, np.array([qmin]), np.array([qmax]), shape, axis
            )
        bits = int(np.asarray(self._const(node, 4)).ravel()[0])
        return IntTensor("", s, -zp * s, np.array([0]), np.array([(1 << bits) - 1]), shape, axis)

    def _const(self, node: NodeProto, i: int) -> np.ndarray:
        v = self.old.get_initializer(node.input[i]) if i < len(node.input) else None
        if v is None:
            raise ValueError(f"{where(node)}: operand {i} must be a constant")
        return np.asarray(v)


def _int_range(bits: int, signed: int, narrow: int) -> tuple[int, int]:
    """The integers a ``bits``-wide quantizer produces (QONNX Quant / Trunc ``signed``, ``narrow``)."""
    if signed:
        return -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - narrow
