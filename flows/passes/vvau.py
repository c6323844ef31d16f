"""Depthwise convolutions as the depthwise MVAU (flows/ir/layers.py VVAU, ``hw/vvau.sv``).

- :func:`depthwise_vvau`: the channels-last lowering (flows/passes/layout.py) of an integer Conv
  with group = C_in = C_out: after its SlidingWindow, a VVAU without activation whose output is the
  accumulator in the type the streamlining annotated (its exact range; a 0 / 1 accumulator as the
  one-threshold activation that equals it);
- :class:`InferVVAUActivation`: a VVAU without activation whose only reader is a channels-last
  MultiThreshold takes the thresholds in (clipped to the accumulator range), as
  flows/passes/hw.py's InferMVAU does for an MVAU; with bipolar input and weights the VVAU then
  counts agreeing signs (XNOR-popcount) and the thresholds move to that domain.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qnnflow.flows.ir.graph import Namer, add_const, consumers, where
from qnnflow.flows.ir.layers import VVAU, get_layer, pair
from qnnflow.flows.passes.hw import (
    _replace,
    accumulator_type,
    activation_output,
    channels_last,
    layer_thresholds,
    weight_type,
)
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def depthwise_vvau(
    model: ModelWrapper, namer: Namer, conv: NodeProto, win: str, out: str, idt: DataType, odt: DataType
) -> NodeProto:
    """The VVAU of the depthwise integer Conv ``conv`` reading the window stream ``win`` and writing
    ``out`` (N, OH, OW, C), whose values lie in ``odt`` (the streamlined accumulator's type, never
    BIPOLAR).

    Without thresholds the VVAU computes the dot product itself, so bipolar weights on a bipolar
    input are stored as 2-bit signed -1 / +1 (hw/vvau.sv would count agreeing signs instead)."""
    w = np.asarray(model.get_initializer(conv.input[1]), dtype=np.float64)  # (C, 1, KH, KW)
    ch, _, kh, kw = w.shape
    wdt = weight_type(model, conv.input[1], w)
    if idt == DataType["BIPOLAR"] and wdt == DataType["BIPOLAR"]:
        wdt = DataType["INT2"]
    wname = add_const(model, namer, conv.name + "_W", w.reshape(ch, kh * kw), wdt)
    ins, acc_dt, no_act = [win, wname], odt, 1
    if odt.bitwidth() < 2:
        # a 0 / 1 accumulator (BINARY): hw/vvau.sv outputs at least 2 bits without thresholds, so
        # the output is the activation count(1 <= acc), which is acc itself in one bit
        _, acc_dt = accumulator_type(kh * kw, idt, wdt, False, where(conv))
        ins.append(add_const(model, namer, conv.name + "_T", np.ones((ch, 1), dtype=np.float32), acc_dt))
        no_act = 0
    shape = model.get_tensor_shape(out)
    return VVAU.make(
        conv.name, ins, [out], Channels=int(ch), Kernel=[int(kh), int(kw)],
        vectors=[int(d) for d in shape[1:-1]], inputDataType=idt.name, weightDataType=wdt.name,
        outputDataType=odt.name, accDataType=acc_dt.name, noActivation=no_act,
    )  # fmt: skip


class InferVVAUActivation:
    """Matches a VVAU with ``noActivation`` whose output is read by one MultiThreshold only
    (channels-last or 2-D layout, output scale 1 and an integer bias, or the bipolar 2 / -1), and
    makes one VVAU with those thresholds. Does not apply otherwise (the VVAU keeps its accumulator
    output and the MultiThreshold becomes a Thresholding layer)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.get_nodes_by_op_type("VVAU"):
            layer = get_layer(node)
            cons = consumers(model, node.output[0])
            if not layer.get("noActivation") or len(cons) != 1 or cons[0].op_type != "MultiThreshold":
                continue
            mt = cons[0]
            if not channels_last(mt):
                continue
            odt, act_val = activation_output(mt)
            if act_val is None:
                continue
            _replace(model, [node, mt], self._absorbed(model, layer, mt, odt, act_val))
            model.set_tensor_datatype(mt.output[0], odt)
            return model, True
        return model, False

    @staticmethod
    def _absorbed(model: ModelWrapper, layer: VVAU, mt: NodeProto, odt: DataType, act_val: int) -> NodeProto:
        node = layer.node
        ch, kk = int(layer.get("Channels")), layer.kk()
        w = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
        idt = DataType[layer.get("inputDataType")]
        xnor = idt == DataType["BIPOLAR"] and bool(np.all(np.abs(w) == 1))
        wdt = DataType["BIPOLAR"] if xnor else DataType[layer.get("weightDataType")]
        acc_range, acc_dt = accumulator_type(kk, idt, wdt, xnor, where(node))
        thr = layer_thresholds(
            np.asarray(model.get_initializer(mt.input[1]), dtype=np.float64), ch, kk, xnor, acc_range
        )
        namer = Namer(model)
        tname = add_const(model, namer, node.name + "_T", thr.astype(np.float32), acc_dt)
        wname = node.input[1]
        if wdt.name != layer.get("weightDataType"):
            wname = add_const(model, namer, node.name + "_W", w, wdt)
        return VVAU.make(
            node.name, [node.input[0], wname, tname], [mt.output[0]], Channels=ch,
            Kernel=list(pair(layer.get("Kernel"))), vectors=list(layer.get("vectors")), inputDataType=idt.name,
            weightDataType=wdt.name, outputDataType=odt.name, accDataType=acc_dt.name, ActVal=act_val,
            binaryXnorMode=int(xnor),
        )  # fmt: skip
