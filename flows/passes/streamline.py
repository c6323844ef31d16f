"""Streamlining: a QONNX graph -> integer MatMul / Conv followed by per-channel thresholds.

:class:`Streamline` walks the graph once, in order, and describes every float tensor of the
original as ``tail(A * q + B)`` of an integer tensor ``q`` of the new graph (see flows/passes/tail.py):

- a quantizer (Quant, BipolarQuant, MultiThreshold, Trunc) after an integer tensor becomes a
  MultiThreshold whose thresholds come from exact evaluation of the per-channel function between
  them (bisection over the accumulator range, then checked); channels where that function
  decreases (negative BatchNorm scales) get their weight rows negated first;
- MatMul / Gemm / Conv with quantized constant weights become the same op on integer weights;
  the scales move into ``A``, biases and input offsets into ``B``;
- elementwise ops with constants, BatchNormalization, Relu, Clip join the tail;
- data movement (Reshape, Flatten, Transpose, Squeeze, Unsqueeze) and MaxPool act on ``q``;
- TopK / ArgMax act on the accumulator when the tail is the same strictly increasing function in
  every channel; an affine tail with per-class (or negative, or zero) scales and offsets becomes
  the exact integer map of flows/passes/label_map.py (integer Mul / Add) before them;
- the float input path up to the first quantizer stays as host-side float ops that end in
  ``Round(value / scale)``; an integer graph input (FINN-ONNX UINT8) goes straight in;
- the float ops after the last integer tensor stay as host-side ops (the logits).

- Add of two computed tensors (a residual join) becomes an integer Add, see
  flows/passes/streamline_residual.py.

It does not apply (ValueError naming the node) to unquantized weights, other ops on two computed
tensors, MaxPool before the activation quantizer, or grouped convolutions other than depthwise (group =
input channels = output channels).
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import QONNX_DOMAIN, Namer, add_const, datatype_for_range, where
from qnnflow.flows.ir.inputs import GRID_HELP
from qnnflow.flows.passes.label_map import affine_tail, per_class
from qnnflow.flows.passes.streamline_linear import LinearMixin
from qnnflow.flows.passes.streamline_residual import ResidualMixin
from qnnflow.flows.passes.tail import (
    ELEMENTWISE,
    QUANTIZERS,
    FloatPath,
    IntTensor,
    TailEvaluator,
    TailStep,
    check_thresholds,
    find_thresholds,
    levels_of,
    per_channel,
)
from qnnflow.flows.passes.tidy import InferShapesAndTypes, RemoveUnused
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

# the most thresholds one activation may take: 8-bit activations (beyond, a threshold table per
# channel costs more block RAM and comparators than an arithmetic requantizer would)
MAX_THRESHOLDS = 255
DATA_MOVEMENT = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity")


class Streamline:
    """See the module docstring. Applies once; ``changed`` is False only for a graph that already
    has no float op between its integer layers (a second application reproduces it)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        before = [n.op_type for n in model.graph.node]
        new = _Streamliner(model).run()
        return new, [n.op_type for n in new.graph.node] != before


class _Streamliner(LinearMixin, ResidualMixin):
    def __init__(self, model: ModelWrapper):
        self.old = model
        self.new = ModelWrapper(copy.deepcopy(model.model))
        self.namer = Namer(model)
        self.nodes: list[NodeProto] = []
        self.forms: dict[str, IntTensor | FloatPath] = {}
        self.linear: dict[str, tuple[NodeProto, str]] = {}  # q tensor -> (MatMul/Conv node, weight init)
        self.dtypes: dict[str, DataType] = {}

    # -- driver --------------------------------------------------------------------------------
    def run(self) -> ModelWrapper:
        old = self.old
        inp = old.graph.input[0].name
        shape = old.get_tensor_shape(inp)
        dt = old.get_tensor_datatype(inp)
        if dt.is_integer():
            lo, hi = int(dt.min()), int(dt.max())
            self.forms[inp] = IntTensor(
                inp,
                np.ones(()),
                np.zeros(()),
                np.array([lo]),
                np.array([hi]),
                shape,
                min(1, len(shape) - 1),
                bipolar=dt == DataType["BIPOLAR"],
            )
        else:
            self.forms[inp] = FloatPath([])
        from qnnflow.flows.ir.graph import topo_nodes

        for node in topo_nodes(old):
            self._visit(node)
        out = old.graph.output[0].name
        form = self.forms.get(out)
        if isinstance(form, FloatPath):
            raise ValueError(f"the graph output {out} is computed without any quantized layer")
        if isinstance(form, IntTensor):
            self._emit_output(form, out)
        self.new.graph.ClearField("node")
        self.new.graph.node.extend(self.nodes)
        for o in self.new.model.opset_import:
            if o.domain in ("", "ai.onnx") and o.version < 11:
                o.version = 11  # Round (host-side input quantization) needs opset 11
        model, _ = RemoveUnused().apply(self.new)
        model.graph.ClearField("value_info")
        model, _ = InferShapesAndTypes().apply(model)
        for name, dt in self.dtypes.items():
            model.set_tensor_datatype(name, dt)
        return model

    def _visit(self, node: NodeProto) -> None:
        op = node.op_type
        data = [i for i in node.input if i and self.old.get_initializer(i) is None]
        if op in ("MatMul", "Gemm", "Conv") and data:
            if self._is_constant(node.input[0]) and not self._is_constant(node.input[1]):
                raise ValueError(
                    f"{where(node)}: the constant weights are its first operand and the activations its second "
                    f"(W x); qnnflow lowers activations times weights (x W, the activations as the first "
                    f"operand): re-export the layer as x @ W.T, or as Gemm with transB"
                )
            data = [node.input[0]]  # weights and bias are read where they are used
        if not data or all(self._is_constant(i) for i in data):
            return  # weight quantizers and other constant subgraphs are read where they are used
        forms = [self.forms.get(i) for i in data]
        if any(f is None for f in forms):
            missing = [i for i, f in zip(data, forms, strict=True) if f is None]
            raise ValueError(f"{where(node)}: input {missing[0]} comes from an op the compiler does not lower")
        if op in ("MatMul", "Gemm", "Conv"):
            self._linear(node, forms[0])
            return
        if op == "Add" and len(data) == 2:
            self._residual_add(node, forms)
            return
        if len(data) > 1:
            raise ValueError(
                f"{where(node)}: an op on two computed tensors other than a residual Add is not supported; "
                f"supported: ops with one computed input and constant operands, and Add of two branches"
            )
        form = forms[0]
        if isinstance(form, IntTensor) and form.sum_spread is not None and op not in QUANTIZERS + ELEMENTWISE:
            raise ValueError(
                f"{where(node)}: the residual add before it rounds differently in float than in integers "
                f"(branch scales that are not powers of two); a quantizer must follow the add before {op}"
            )
        if isinstance(form, FloatPath):
            self._float(node, form)
        elif op in QUANTIZERS:
            self._quantize(node, form)
        elif op in ELEMENTWISE:
            self._elementwise(node, form)
        elif op in DATA_MOVEMENT:
            self._move(node, form)
        elif op == "MaxPool":
            self._maxpool(node, form)
        elif op in ("TopK", "ArgMax"):
            self._select(node, form)
        else:
            raise ValueError(f"{where(node)}: op type {op} cannot be streamlined")

    def _is_constant(self, name: str) -> bool:
        """True for tensors computed from initializers only (weight quantizers)."""
        if self.old.get_initializer(name) is not None:
            return True
        p = self.old.find_producer(name)
        return p is not None and all(self._is_constant(i) for i in p.input if i)

    # -- float input path ------------------------------------------------------------------------
    def _float(self, node: NodeProto, form: FloatPath) -> None:
        op = node.op_type
        if op in ELEMENTWISE or op in DATA_MOVEMENT:
            self.forms[node.output[0]] = FloatPath(form.nodes + [node])
            return
        if op == "Trunc":
            raise ValueError(f"{where(node)}: a Trunc must follow an integer tensor, not the float input")
        if op not in QUANTIZERS:
            raise ValueError(
                f"{where(node)}: its input is not quantized; the float input must pass through a "
                f"quantizer (Quant, BipolarQuant, MultiThreshold) before {op}, or declare the grid the inputs "
                f"lie on with --input-grid: {GRID_HELP}"
            )
        qform = self._quantizer_form(node)
        self.nodes.extend(form.nodes + [node])
        cur = node.output[0]
        if np.any(qform.B != 0):
            cur = self._emit(
                "Sub", [cur, add_const(self.new, self.namer, "in_offset", self._bc(qform.B, qform))], "in_sub"
            )
        cur = self._emit("Div", [cur, add_const(self.new, self.namer, "in_scale", self._bc(qform.A, qform))], "in_div")
        q = self._emit("Round", [cur], "in_int")
        shape = self.old.get_tensor_shape(node.output[0])
        self.forms[node.output[0]] = IntTensor(
            q,
            qform.A,
            qform.B,
            qform.lo,
            qform.hi,
            shape,
            min(1, len(shape) - 1),
            bipolar=qform.bipolar,
        )
        self.dtypes[q] = self._dtype(qform.lo, qform.hi, qform.bipolar)

    def _bc(self, v: np.ndarray, t: IntTensor) -> np.ndarray:
        """A per-channel vector shaped to broadcast against the original tensor of ``t``."""
        v = np.asarray(v)
        if v.ndim == 0 or v.size == 1:
            return v.reshape(())
        shape = [1] * len(t.shape)
        shape[t.axis] = v.size
        return v.reshape(shape)

    # -- quantizers ------------------------------------------------------------------------------
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
        ``out_bits`` (signed / narrow); v1 does not, and its range is taken from the input's in
        :meth:`_quantize`."""
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

    def _quantize(self, node: NodeProto, t: IntTensor) -> None:
        """Quantizer after an integer tensor: a MultiThreshold with exactly evaluated thresholds."""
        qf = self._quantizer_form(node)
        tail = t.tail + [self._tail_step(node, t)]
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
        qlo, qhi = int(qf.lo.min()), int(qf.hi.max())
        ev = TailEvaluator(src)
        qA = np.broadcast_to(qf.A, (c,))
        qB = np.broadcast_to(qf.B, (c,))

        def g(values: np.ndarray) -> np.ndarray:  # float values before the tail (P, C) -> levels
            out = np.asarray(ev.ex.run(values.astype(np.float32)), dtype=np.float32).reshape(values.shape)
            lv = levels_of(out, qA, qB, qlo, qhi)
            return (lv + 1) // 2 if bip else lv  # bipolar: count 0 / 1 for -1 / +1

        def f(probe: np.ndarray) -> np.ndarray:
            lv = levels_of(ev(probe), qA, qB, qlo, qhi)
            return (lv + 1) // 2 if bip else lv

        bip = qf.bipolar
        if bip:
            qlo, qhi = 0, 1
        if node.op_type == "Trunc":  # k's range: the levels at the ends of the (monotone) input range
            ends = np.rint((ev(np.stack([src.lo, src.hi])).astype(np.float64) - qB) / qA)
            qlo, qhi = int(ends.min()), int(ends.max())
            if len(node.input) == 6:
                qlo, qhi = max(qlo, int(qf.lo.min())), min(qhi, int(qf.hi.max()))
        if qhi - qlo > MAX_THRESHOLDS:
            raise ValueError(
                f"{where(node)}: this activation has {qhi - qlo + 1:,} levels ({qlo}..{qhi}), which would take "
                f"{qhi - qlo:,} thresholds per channel; the thresholding layers serve activations of up to "
                f"{MAX_THRESHOLDS.bit_length()} bits ({MAX_THRESHOLDS} thresholds). Quantize this activation to at "
                f"most {MAX_THRESHOLDS.bit_length()} bits (requantization by multiply-shift-round is not implemented)"
            )
        if t.sum_spread is not None:
            self._check_spread(t, g, where(node))

        ends = f(np.stack([src.lo, src.hi]))
        falling = ends[0] > ends[1]
        if np.any(falling):
            if t.negatable is None:
                chans = np.flatnonzero(falling)[:5].tolist()
                raise ValueError(
                    f"{where(node)}: the activation decreases with its input in channels {chans}, which is "
                    f"only supported right after a MatMul / Conv (whose rows are negated)"
                )
            self._negate(t, falling)
            src.A = np.where(falling, -src.A, src.A)
            src.lo, src.hi = np.where(falling, -src.hi, src.lo), np.where(falling, -src.lo, src.hi)
            # the negated rows' range is mirrored: -2..1 becomes -1..2, which INT2 does not hold
            self.dtypes[t.name] = self._dtype(src.lo, src.hi, False)
        what = where(node)
        thr = find_thresholds(f, src.lo, src.hi, qlo, qhi, what)
        check_thresholds(f, thr, src.lo, src.hi, qlo, what)
        out = self.namer(node.output[0] + "_int")
        thr_name = add_const(self.new, self.namer, node.name + "_thresholds", thr.astype(np.float32))
        odt = DataType["BIPOLAR"] if bip else datatype_for_range(qlo, qhi)
        attrs = {"out_dtype": odt.name, "out_bias": float(-1 if bip else qlo)}
        if bip:
            attrs["out_scale"] = 2.0
            qlo = -1
        if len(self._shape_of(t)) == 4:
            attrs["data_layout"] = layout_of(t)
        self.nodes.append(
            helper.make_node(
                "MultiThreshold",
                [t.name, thr_name],
                [out],
                domain=QONNX_DOMAIN,
                name=self.namer(node.name + "_mt"),
                **attrs,
            )
        )
        self.dtypes[out] = odt
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

    # -- elementwise, data movement, pooling -----------------------------------------------------
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
        self.forms[node.output[0]] = IntTensor(
            t.name,
            t.A,
            t.B,
            t.lo,
            t.hi,
            self.old.get_tensor_shape(node.output[0]),
            t.axis,
            t.bipolar,
            t.tail + [step],
            t.negatable,
            t.shape_nodes,
            t.sum_spread,
        )

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
        self.forms[node.output[0]] = IntTensor(
            t.name,
            t.A,
            t.B,
            t.lo,
            t.hi,
            out_shape,
            axis,
            t.bipolar,
            t.tail + [TailStep(node, [None])],
            t.negatable,
            t.shape_nodes + [node],
        )

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

    def _select(self, node: NodeProto, t: IntTensor) -> None:
        """TopK / ArgMax on the accumulator: directly when the tail is one strictly increasing
        function in every class, else through the exact per-class map of :meth:`_select_mapped`."""
        what = where(node)
        lo, hi = int(np.min(t.lo)), int(np.max(t.hi))
        if per_class(t) or (hi - lo + 1 > (1 << 22) and affine_tail(t)):
            self._select_mapped(node, t)
            return
        if hi - lo + 1 > (1 << 22):
            raise ValueError(f"{what}: accumulator range [{lo}, {hi}] too wide to check the final scale")
        one = IntTensor(
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
        vals = TailEvaluator(one)(np.arange(lo, hi + 1).reshape(-1, 1)).ravel()
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
        from qnnflow.flows.passes.label_map import map_nodes, tail_class_map

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

    # -- output ----------------------------------------------------------------------------------
    def _emit_output(self, t: IntTensor, out: str) -> None:
        """Host-side float ops after the last integer tensor: value = tail(A * q + B)."""
        cur = t.name
        a = np.ravel(t.A)[:1].reshape(()) if np.all(t.A == np.ravel(t.A)[0]) else t.A
        b = np.ravel(t.B)[:1].reshape(()) if np.all(t.B == np.ravel(t.B)[0]) else t.B
        # the scale and offset the compiler makes are the original output's: name its producer on them,
        # so that a later step's refusal of them can point at a node of the user's graph
        origin = self.old.find_producer(out)
        doc = f"the scale / offset of the logits computed by {where(origin)}" if origin is not None else ""
        if not np.all(a == 1):
            cur = self._emit("Mul", [cur, add_const(self.new, self.namer, "out_scale", self._bc(a, t))], "out_mul", doc)
        if not np.all(b == 0):
            cur = self._emit(
                "Add", [cur, add_const(self.new, self.namer, "out_offset", self._bc(b, t))], "out_add", doc
            )
        for step in t.tail:
            n = copy.deepcopy(step.node)
            for i, name in enumerate(n.input):
                if name and self.old.get_initializer(name) is None:
                    n.input[i] = cur
            cur = n.output[0]
            self.nodes.append(n)
        if cur != out:
            self._alias_output(out, cur)

    def _alias_output(self, out: str, cur: str) -> None:
        """Make the node that computes ``cur`` write the graph output ``out`` instead."""
        for n in self.nodes:
            if cur in n.output:
                n.output[list(n.output).index(cur)] = out
                for other in self.nodes:
                    for i, name in enumerate(other.input):
                        if name == cur:
                            other.input[i] = out
                return
        self.nodes.append(helper.make_node("Identity", [cur], [out], name=self.namer("Output")))

    # -- helpers ---------------------------------------------------------------------------------
    def _rename(self, name: str) -> str:
        return self.namer(name + "_int")

    def _emit(self, op: str, ins: list[str], base: str, doc: str = "") -> str:
        out = self.namer(base)
        self.nodes.append(helper.make_node(op, ins, [out], name=self.namer(base.capitalize()), doc_string=doc or None))
        return out

    def _emit_like(self, node: NodeProto, q: str) -> str:
        new = copy.deepcopy(node)
        new.input[0] = q
        out = self._rename(node.output[0])
        new.output[0] = out
        del new.output[1:]
        self.nodes.append(new)
        return out

    @staticmethod
    def _dtype(lo, hi, bipolar: bool) -> DataType:
        return DataType["BIPOLAR"] if bipolar else datatype_for_range(int(np.min(lo)), int(np.max(hi)))


def _int_range(bits: int, signed: int, narrow: int) -> tuple[int, int]:
    """The integers a ``bits``-wide quantizer produces (QONNX Quant / Trunc ``signed``, ``narrow``)."""
    if signed:
        return -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - narrow


def layout_of(t: IntTensor) -> str:
    """The MultiThreshold ``data_layout`` of a 4D integer tensor: channels at axis 1 or 3."""
    return "NHWC" if t.axis == 3 else "NCHW"


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
