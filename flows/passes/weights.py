"""Analysis: the integer form of a constant weight tensor (read-only).

A weight is accepted as ``scale * W`` with ``W`` integer when it is
- a Quant of an initializer (per-tensor or per-output-channel scale, integer zero point),
- a BipolarQuant of an initializer (W in {-1, +1}),
- an initializer holding integers already (FINN-ONNX: BIPOLAR / INTn annotated MatMul weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qnnflow.flows.ir.graph import where
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


@dataclass
class IntWeight:
    values: np.ndarray  # integer-valued, original layout
    scale: np.ndarray  # broadcastable to ``values``
    bipolar: bool
    ternary: bool
    bits: int  # bits of the signed (or bipolar: 1) integer type that holds ``values``


def _quant_value(model: ModelWrapper, node) -> tuple[np.ndarray, np.ndarray]:
    from qonnx.custom_op.general.quant import quant

    w = model.get_initializer(node.input[0])
    scale = model.get_initializer(node.input[1])
    zp = model.get_initializer(node.input[2])
    bw = model.get_initializer(node.input[3])
    attrs = {a.name: a for a in node.attribute}
    signed = int(attrs["signed"].i) if "signed" in attrs else 1
    narrow = int(attrs["narrow"].i) if "narrow" in attrs else 0
    mode = attrs["rounding_mode"].s.decode() if "rounding_mode" in attrs else "ROUND"
    if scale is None or zp is None or bw is None:
        raise ValueError(f"{where(node)}: weight quantizer parameters must be constants")
    if not np.all(zp == np.round(zp)):
        raise ValueError(f"{where(node)}: weight zero point must be an integer, not {zp}")
    value = quant(w, scale, zp, bw, signed, narrow, mode)
    ints = np.rint(value / scale + zp) - zp
    return ints, np.asarray(scale, dtype=np.float64)


def int_weight(model: ModelWrapper, tensor: str, user: str) -> IntWeight:
    """The integer form of the weight ``tensor`` used by node ``user``; ValueError if it has none."""
    init = model.get_initializer(tensor)
    if init is not None:
        if not np.all(init == np.round(init)):
            raise ValueError(
                f"{user}: weights {tensor} are not quantized: expected a Quant / BipolarQuant of an "
                f"initializer or integer-valued weights"
            )
        ints = init.astype(np.float64)
        scale = np.ones(())
        dt = model.get_tensor_datatype(tensor)
        bipolar = dt == DataType["BIPOLAR"] or bool(np.all(np.abs(ints) == 1))
    else:
        node = model.find_producer(tensor)
        if (
            node is None
            or node.op_type not in ("Quant", "BipolarQuant")
            or model.get_initializer(node.input[0]) is None
        ):
            kind = "graph input" if node is None else where(node)
            raise ValueError(
                f"{user}: weights {tensor} (from {kind}) are not constant quantized weights: expected a "
                f"Quant / BipolarQuant of an initializer or integer-valued weights"
            )
        if node.op_type == "BipolarQuant":
            w = model.get_initializer(node.input[0])
            ints = np.where(w >= 0, 1.0, -1.0)
            scale = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
            bipolar = True
        else:
            ints, scale = _quant_value(model, node)
            bipolar = bool(np.all(np.abs(ints) == 1))
    ternary = not bipolar and bool(np.all(np.abs(ints) <= 1))
    if bipolar:
        bits = 1
    else:
        # the narrowest two's complement width holding [min, max]: -128..127 is 8 bits, not 9
        lo = min(0, int(np.min(ints))) if ints.size else 0
        hi = max(0, int(np.max(ints))) if ints.size else 0
        bits = max(2, max(-lo - 1, hi).bit_length() + 1)
    return IntWeight(ints, scale, bipolar, ternary, bits)


def weight_datatype(w: IntWeight) -> DataType:
    if w.bipolar:
        return DataType["BIPOLAR"]
    if w.ternary:
        return DataType["TERNARY"]
    return DataType[f"INT{w.bits}"]
