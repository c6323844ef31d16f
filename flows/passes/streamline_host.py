"""Part of the streamlining (flows/passes/streamline.py): the host-side float ends of the graph.

A mixin of the streamliner for what stays on the host as float ops:

- the float input path up to the first quantizer: the original ops, then ``Round((x - B) / A)``
  of that quantizer's form (flows/passes/streamline_quantizers.py), the accelerator's input;
- after the last integer tensor: ``A * q + B`` and the pending tail of original float ops (the
  logits), the last of them writing the graph output.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import add_const, where
from qnnflow.flows.ir.inputs import GRID_HELP
from qnnflow.flows.passes.streamline_moves import DATA_MOVEMENT
from qnnflow.flows.passes.tail import ELEMENTWISE, QUANTIZERS, FloatPath, IntTensor


class HostMixin:
    """Uses the host class's ``old``, ``new``, ``namer``, ``nodes``, ``forms``, ``dtypes``,
    ``_quantizer_form`` and the helpers of flows/passes/streamline_emit.py."""

    def _float(self, node: NodeProto, form: FloatPath) -> None:
        """An op on the float input path: elementwise ops and data movement join it; the first
        quantizer ends it (its output, rounded to integers, is the accelerator's input)."""
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
