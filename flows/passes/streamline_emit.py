"""Part of the streamlining (flows/passes/streamline.py): appending nodes to the integer graph.

A mixin of the streamliner with the helpers every handler uses to write the new graph: fresh
names, one new node, a copy of an original data-movement node on an integer tensor, and the
MultiThreshold that quantizers, re-levelling and label maps end in; plus the integer datatype a
range needs and the broadcast shape of a per-channel constant.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import QONNX_DOMAIN, datatype_for_range
from qnnflow.flows.passes.tail import IntTensor
from qonnx.core.datatype import DataType


def layout_of(t: IntTensor) -> str:
    """The MultiThreshold ``data_layout`` of a 4D integer tensor: channels at axis 1 or 3."""
    return "NHWC" if t.axis == 3 else "NCHW"


class EmitMixin:
    """Uses the host class's ``namer``, ``nodes`` and ``dtypes``."""

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

    def _emit_thresholds(
        self, src: str, thr_name: str, out: str, base: str, odt: DataType, bias: int, layout: str | None
    ) -> None:
        """A MultiThreshold ``src`` -> ``out`` (node named after ``base``) counting the thresholds
        ``thr_name`` reached, plus ``bias``; a BIPOLAR ``odt`` maps the count 0 / 1 to -1 / +1
        (scale 2, ``bias`` -1). ``layout`` is the ``data_layout`` of a 4D input, else None."""
        attrs = {"out_dtype": odt.name, "out_bias": float(bias)}
        if odt == DataType["BIPOLAR"]:
            attrs["out_scale"] = 2.0
        if layout:
            attrs["data_layout"] = layout
        self.nodes.append(
            helper.make_node(
                "MultiThreshold",
                [src, thr_name],
                [out],
                domain=QONNX_DOMAIN,
                name=self.namer(base),
                **attrs,
            )
        )
        self.dtypes[out] = odt

    @staticmethod
    def _dtype(lo, hi, bipolar: bool) -> DataType:
        return DataType["BIPOLAR"] if bipolar else datatype_for_range(int(np.min(lo)), int(np.max(hi)))

    @staticmethod
    def _bc(v: np.ndarray, t: IntTensor) -> np.ndarray:
        """A per-channel vector shaped to broadcast against the original tensor of ``t``."""
        v = np.asarray(v)
        if v.ndim == 0 or v.size == 1:
            return v.reshape(())
        shape = [1] * len(t.shape)
        shape[t.axis] = v.size
        return v.reshape(shape)
