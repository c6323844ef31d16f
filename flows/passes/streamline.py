"""Streamlining: a QONNX graph -> integer MatMul / Conv followed by per-channel thresholds.

:class:`Streamline` walks the graph once, in order, and describes every float tensor of the
original as ``tail(A * q + B)`` of an integer tensor ``q`` of the new graph (see flows/passes/tail.py).
This module holds the pass and its walk; each kind of op is handled by a mixin of its own module:

- a quantizer (Quant, BipolarQuant, MultiThreshold, Trunc) after an integer tensor becomes a
  MultiThreshold whose thresholds come from exact evaluation of the per-channel function between
  them (bisection over the accumulator range, then checked); channels where that function
  decreases (negative BatchNorm scales) get their weight rows negated first
  (flows/passes/streamline_thresholds.py; the quantizer's own ``A * q + B`` is read in
  flows/passes/streamline_quantizers.py);
- MatMul / Gemm / Conv with quantized constant weights become the same op on integer weights;
  the scales move into ``A``, biases and input offsets into ``B`` (flows/passes/streamline_linear.py);
- elementwise ops with constants, BatchNormalization, Relu, Clip join the tail;
- data movement (Reshape, Flatten, Transpose, Squeeze, Unsqueeze) and MaxPool act on ``q``
  (both flows/passes/streamline_moves.py); so is qnnflow's TVSmooth on a quantized activation (its
  codes' integer step, flows/ir/custom_ops.py);
- TopK / ArgMax act on the accumulator when the tail is the same strictly increasing function in
  every channel; an affine tail with per-class (or negative, or zero) scales and offsets becomes
  the exact integer map of flows/passes/label_map.py (integer Mul / Add) before them
  (flows/passes/streamline_select.py);
- the float input path up to the first quantizer stays as host-side float ops that end in
  ``Round(value / scale)``; an integer graph input (FINN-ONNX UINT8) goes straight in;
- the float ops after the last integer tensor stay as host-side ops (the logits) (both
  flows/passes/streamline_host.py).

- Add of two computed tensors (a residual join) becomes an integer Add, see
  flows/passes/streamline_residual.py.

The nodes are written through the helpers of flows/passes/streamline_emit.py.

It does not apply (ValueError naming the node) to unquantized weights, other ops on two computed
tensors, MaxPool before the activation quantizer, or grouped convolutions other than depthwise (group =
input channels = output channels).
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import NodeProto
from qnnflow.flows.ir.graph import Namer, topo_nodes, where
from qnnflow.flows.passes.streamline_emit import EmitMixin
from qnnflow.flows.passes.streamline_host import HostMixin
from qnnflow.flows.passes.streamline_linear import LinearMixin
from qnnflow.flows.passes.streamline_moves import DATA_MOVEMENT, MoveMixin
from qnnflow.flows.passes.streamline_quantizers import QuantizerFormMixin
from qnnflow.flows.passes.streamline_residual import ResidualMixin
from qnnflow.flows.passes.streamline_select import SelectMixin
from qnnflow.flows.passes.streamline_thresholds import ThresholdMixin
from qnnflow.flows.passes.tail import ELEMENTWISE, QUANTIZERS, FloatPath, IntTensor
from qnnflow.flows.passes.tidy import InferShapesAndTypes, RemoveUnused
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


class Streamline:
    """See the module docstring. Applies once; ``changed`` is False only for a graph that already
    has no float op between its integer layers (a second application reproduces it)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        before = [n.op_type for n in model.graph.node]
        new = _Streamliner(model).run()
        return new, [n.op_type for n in new.graph.node] != before


class _Streamliner(
    HostMixin, QuantizerFormMixin, ThresholdMixin, LinearMixin, ResidualMixin, MoveMixin, SelectMixin, EmitMixin
):
    """One walk over the graph: the forms of the tensors seen so far, and the nodes of the new graph."""

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
        elif op == "TVSmooth":
            self._tv_smooth(node, form)
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
